//! Input bindings: once the app is ready, each input binding whose `direction` allows it (and,
//! unless `direction` names `input`, whose route the app accepts an `OPTIONS` probe on) is read,
//! and every event is POSTed to the app at `/<route>`. A non-2xx answer is retried a few times
//! with backoff; the binding then hears the verdict and decides (MQTT redelivers, cron logs).
//! Events are delivered one at a time per binding, in order. On shutdown no new event is taken;
//! the one in flight finishes within the grace period. When the components change (Kubernetes
//! mode), [`reconcile`] restarts the readers of replaced bindings on their new instances.

use super::changes::{Changes, changes, instance_id};
use crate::blocks::Sidecar;
use crate::components::bindings::{InputBinding, InputEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Deliveries of one event before the binding hears it failed.
pub const ATTEMPTS: u32 = 3;
/// The running readers, kept in line with the components by [`reconcile`].
pub struct InputReaders {
    sidecar: Arc<Sidecar>,
    deliveries: TaskTracker,
    /// Set once the app is ready: nothing is read for an app that cannot take events yet.
    app_ready: AtomicBool,
    readers: tokio::sync::Mutex<Vec<RunningReader>>,
}

/// One reader: the binding's name and route, the instance it reads, and its stop signal.
struct RunningReader {
    key: (String, String),
    instance: usize,
    stop: CancellationToken,
}

impl InputReaders {
    pub fn new(sidecar: Arc<Sidecar>, deliveries: TaskTracker) -> InputReaders {
        InputReaders {
            sidecar,
            deliveries,
            app_ready: AtomicBool::new(false),
            readers: tokio::sync::Mutex::default(),
        }
    }

    /// Once the app is ready, starts every input binding; returns once they are started (or
    /// refused).
    pub async fn start(&self) {
        if self.sidecar.app().is_none() || !super::wait_for_app(&self.sidecar).await {
            return;
        }
        self.app_ready.store(true, Ordering::SeqCst);
        self.reconcile().await;
    }

    /// Brings the readers in line with the current components: a binding added starts, one
    /// removed stops, one whose component was replaced (edited) restarts on the new instance.
    pub async fn reconcile(&self) {
        if !self.app_ready.load(Ordering::SeqCst) {
            return;
        }
        let sc = &self.sidecar;
        let mut readers = self.readers.lock().await;
        let registry = sc.registry();
        let mut wanted = Vec::new();
        for slot in registry.slots() {
            let name = &slot.planned.info.name;
            let Ok((slot, binding)) = registry.binding(name) else {
                continue;
            };
            let (Some(input), Some(settings)) =
                (binding.input.clone(), slot.planned.binding.clone())
            else {
                continue;
            };
            if settings.input_allowed() {
                wanted.push(((name.clone(), settings.route.clone()), input, settings));
            }
        }
        let running: Vec<_> = readers
            .iter()
            .map(|r| (r.key.clone(), r.instance))
            .collect();
        let wanted_ids: Vec<_> = wanted
            .iter()
            .map(|(key, input, _)| (key.clone(), Some(instance_id(input))))
            .collect();
        let Changes { stop, start } = changes(&running, &wanted_ids);
        for index in stop.iter().rev() {
            let reader = readers.remove(*index);
            reader.stop.cancel();
            tracing::info!(binding = %reader.key.0, "input binding stopped");
        }
        for index in start {
            let ((name, route), input, settings) = &wanted[index];
            let accepted = match sc.app() {
                Some(app) => !settings.needs_probe() || app.probe_route(route).await,
                None => false,
            };
            if !accepted {
                tracing::info!(binding = %name, %route, "the app did not accept the OPTIONS probe; input binding not started");
                continue;
            }
            let reader = Reader {
                sidecar: sc.clone(),
                name: name.clone(),
                route: route.clone(),
            };
            let stop = sc.shutdown().child_token();
            self.deliveries.spawn(
                reader
                    .run(input.clone(), stop.clone())
                    .instrument(tracing::info_span!("input_binding", binding = %name)),
            );
            readers.push(RunningReader {
                key: (name.clone(), route.clone()),
                instance: instance_id(input),
                stop,
            });
        }
    }
}

/// Reads one input binding and delivers its events.
struct Reader {
    sidecar: Arc<Sidecar>,
    name: String,
    route: String,
}

impl Reader {
    async fn run(self, input: Arc<dyn InputBinding>, stop: CancellationToken) {
        let mut events = match input.read().await {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "input binding could not start reading");
                return;
            }
        };
        tracing::info!(route = %self.route, "input binding started");
        // While the app is unhealthy, events are not taken: they wait in the binding.
        while self.sidecar.wait_app_healthy(&stop).await {
            let event = tokio::select! {
                _ = stop.cancelled() => break,
                e = events.recv() => match e { Some(e) => e, None => break },
            };
            self.deliver(event, &stop).await;
        }
    }

    async fn deliver(&self, event: InputEvent, stop: &CancellationToken) {
        let InputEvent {
            data,
            metadata,
            done,
        } = event;
        let mut backoff =
            crate::resiliency::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut last_failure = String::from("stopped while the app was unhealthy");
        for attempt in 1..=ATTEMPTS {
            if !self.sidecar.wait_app_healthy(stop).await {
                break;
            }
            let started = std::time::Instant::now();
            match self.post(&data, &metadata).await {
                Ok(answer) => {
                    self.sidecar.metrics().components().input_binding(
                        &self.name,
                        true,
                        Some(started.elapsed()),
                    );
                    let _ = done.send(Ok(answer));
                    return;
                }
                Err(why) => last_failure = why,
            }
            if attempt == ATTEMPTS || stop.is_cancelled() {
                break;
            }
            if !backoff.sleep(stop).await {
                break;
            }
        }
        self.sidecar
            .metrics()
            .components()
            .input_binding(&self.name, false, None);
        tracing::warn!(route = %self.route, failure = %last_failure, "the app did not take an input binding event");
        let _ = done.send(Err(last_failure));
    }

    /// One delivery; `Ok` with the app's answer when it took the event.
    async fn post(
        &self,
        data: &bytes::Bytes,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<bytes::Bytes, String> {
        let app = self.sidecar.app().ok_or("no app channel")?;
        app.deliver_binding(&self.route, data.clone(), metadata)
            .await
    }
}
