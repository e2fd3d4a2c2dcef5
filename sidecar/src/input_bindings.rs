//! Input bindings: once the app is ready, each input binding whose `direction` allows it (and,
//! unless `direction` names `input`, whose route the app accepts an `OPTIONS` probe on) is read,
//! and every event is POSTed to the app at `/<route>`. A non-2xx answer is retried a few times
//! with backoff; the binding then hears the verdict and decides (MQTT redelivers, cron logs).
//! Events are delivered one at a time per binding, in order. On shutdown no new event is taken;
//! the one in flight finishes within the grace period. When the components change (Kubernetes
//! mode), [`reconcile`] restarts the readers of replaced bindings on their new instances.

use crate::components::bindings::{InputBinding, InputEvent};
use crate::live_workers::{Changes, changes, instance_id};
use crate::runtime::SharedRuntime;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Deliveries of one event before the binding hears it failed.
pub const ATTEMPTS: u32 = 3;
/// How long the app gets to answer the OPTIONS probe (Dapr's figure).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the app's answer to `OPTIONS /<route>` means it takes the binding's events: any 2xx,
/// or 405 (a route that exists but has no OPTIONS handler), as in Dapr.
pub fn probe_accepts(status: u16) -> bool {
    (200..300).contains(&status) || status == 405
}

/// The running readers, kept in line with the components by [`reconcile`].
#[derive(Default)]
pub struct InputReaders {
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

/// Once the app is ready, starts every input binding; returns once they are started (or refused).
pub async fn start(rt: SharedRuntime) {
    if rt.app.is_none() || !crate::pubsub::wait_for_app(&rt).await {
        return;
    }
    rt.input_readers.app_ready.store(true, Ordering::SeqCst);
    reconcile(&rt).await;
}

/// Brings the readers in line with the current components: a binding added starts, one removed
/// stops, one whose component was replaced (Kubernetes mode: edited) restarts on the new instance.
pub async fn reconcile(rt: &SharedRuntime) {
    if !rt.input_readers.app_ready.load(Ordering::SeqCst) {
        return;
    }
    let mut readers = rt.input_readers.readers.lock().await;
    let registry = rt.registry();
    let mut wanted = Vec::new();
    for slot in registry.slots() {
        let name = &slot.planned.info.name;
        let Ok((slot, binding)) = registry.binding(name) else {
            continue;
        };
        let (Some(input), Some(settings)) = (binding.input.clone(), slot.planned.binding.clone())
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
        if settings.needs_probe() && !probe(rt, route).await {
            tracing::info!(binding = %name, %route, "the app did not accept the OPTIONS probe; input binding not started");
            continue;
        }
        let reader = Reader {
            rt: rt.clone(),
            name: name.clone(),
            route: route.clone(),
        };
        let stop = rt.shutdown.child_token();
        rt.deliveries.spawn(
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

async fn probe(rt: &SharedRuntime, route: &str) -> bool {
    let Some(app) = rt.app.as_ref() else {
        return false;
    };
    let Ok(mut req) = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("/{route}"))
        .body(Body::empty())
    else {
        return false;
    };
    add_token(rt, &mut req);
    match tokio::time::timeout(PROBE_TIMEOUT, app.send(req)).await {
        Ok(Ok(response)) => probe_accepts(response.status().as_u16()),
        Ok(Err(e)) => {
            tracing::warn!(%route, error = %e, "OPTIONS probe failed");
            false
        }
        Err(_) => {
            tracing::warn!(%route, "OPTIONS probe timed out");
            false
        }
    }
}

fn add_token(rt: &SharedRuntime, req: &mut Request<Body>) {
    if let Some(token) = &rt.app_token {
        req.headers_mut()
            .insert(HeaderName::from_static("dapr-api-token"), token.clone());
    }
}

/// Reads one input binding and delivers its events.
struct Reader {
    rt: SharedRuntime,
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
        loop {
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
        let mut last_failure = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.post(&data, &metadata).await {
                Ok(answer) => {
                    self.rt.metrics.input_binding(&self.name, true);
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
        self.rt.metrics.input_binding(&self.name, false);
        tracing::warn!(route = %self.route, failure = %last_failure, "the app did not take an input binding event");
        let _ = done.send(Err(last_failure));
    }

    /// One POST; `Ok` with the app's answer when it is 2xx.
    async fn post(
        &self,
        data: &Bytes,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Bytes, String> {
        let app = self.rt.app.as_ref().ok_or("no app channel")?;
        let mut req = Request::post(format!("/{}", self.route))
            .body(Body::from(data.clone()))
            .map_err(|e| e.to_string())?;
        let headers = req.headers_mut();
        crate::app_channel::metadata_headers(headers, metadata);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add_token(&self.rt, &mut req);
        let (status, body) = app.exchange(req).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("the app answered {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_accepts_2xx_and_405_only() {
        for status in [200, 204, 299, 405] {
            assert!(probe_accepts(status), "{status}");
        }
        for status in [301, 400, 404, 500, 503] {
            assert!(!probe_accepts(status), "{status}");
        }
    }
}
