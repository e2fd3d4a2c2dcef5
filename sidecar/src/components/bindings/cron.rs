//! `bindings.cron`: an input binding that fires on a schedule, in the forms Dapr's parser
//! (robfig/cron with optional seconds and descriptors) accepts: `*/5 * * * *`, `*/15 * * * * *`,
//! `@hourly`/`@daily`/…, and `@every 15m`. Times are read in the local time zone, as Dapr does.
//!
//! Each firing is one event with no body and Dapr's metadata (`timeZone`, `readTimeUTC`). The
//! next firing is looked for only once the app has answered, so ticks never overlap and a tick
//! missed while the app was busy is skipped rather than queued. The output side takes Dapr's
//! older `delete` operation, which stops the schedule for good.

use super::go_time;
use super::{
    Binding, BindingError, InputBinding, InputEvent, InvokeRequest, InvokeResponse, OutputBinding,
};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError, parse_duration};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Local, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// When a cron binding fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `@every <duration>`: whole seconds, at least one (robfig rounds the same way).
    Every(Duration),
    /// A cron expression, with or without the seconds field.
    Cron(Box<croner::Cron>),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if let Some(every) = lower.strip_prefix("@every") {
            let every = parse_duration(every)?;
            return Ok(Schedule::Every(Duration::from_secs(every.as_secs().max(1))));
        }
        let text = if lower == "@midnight" { "@daily" } else { text };
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            // robfig reads `5/10` as "from 5, every 10".
            .sloppy_ranges(true)
            .build()
            .parse(text)
            .map_err(|e| e.to_string())?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first firing strictly after both `prev` (the previous firing) and `now`.
    fn next<Tz: TimeZone>(&self, prev: &DateTime<Tz>, now: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match self {
            Schedule::Every(every) => {
                // Firings stay on prev + k·every; those already past are skipped.
                let behind = now.clone().signed_duration_since(prev.clone()).to_std();
                let steps = behind.map_or(0, |b| b.as_nanos() / every.as_nanos()) + 1;
                let ahead = every.checked_mul(u32::try_from(steps).ok()?)?;
                Some(prev.clone() + chrono::Duration::from_std(ahead).ok()?)
            }
            Schedule::Cron(cron) => {
                let from = if now > prev { now } else { prev };
                cron.find_next_occurrence(from, false).ok()
            }
        }
    }
}

/// Validated settings of a `bindings.cron` component.
#[derive(Debug, Clone, PartialEq)]
pub struct CronConfig {
    /// The `schedule` text, for logs and the `delete` answer.
    pub text: String,
    pub schedule: Schedule,
}

impl CronConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let text = md.require("schedule")?;
        let schedule = Schedule::parse(text).map_err(|reason| MetadataError {
            field: "schedule".to_owned(),
            value: text.to_owned(),
            reason: format!("not a cron schedule: {reason}"),
        })?;
        Ok(CronConfig {
            text: text.to_owned(),
            schedule,
        })
    }
}

/// The binding: the schedule, and the means to stop it.
#[derive(Debug)]
pub struct CronBinding {
    config: CronConfig,
    stop: CancellationToken,
    reading: AtomicBool,
}

impl CronBinding {
    pub fn new(config: &CronConfig) -> Self {
        CronBinding {
            config: config.clone(),
            stop: CancellationToken::new(),
            reading: AtomicBool::new(false),
        }
    }

    /// Both sides: ticks in, `delete` out.
    pub fn binding(config: &CronConfig) -> Binding {
        let cron = Arc::new(CronBinding::new(config));
        Binding {
            input: Some(cron.clone()),
            output: Some(cron),
        }
    }
}

impl Drop for CronBinding {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What Dapr sends with each tick. `timeZone` is Go's name for the local zone, `Local`.
fn tick_metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("timeZone".to_owned(), "Local".to_owned()),
        ("readTimeUTC".to_owned(), go_time::time_string(Utc::now())),
    ])
}

/// Fires until stopped or until the runtime drops the receiver.
async fn ticks(schedule: Schedule, events: mpsc::Sender<InputEvent>, stop: CancellationToken) {
    // robfig starts `@every` on a whole second.
    let start = Local::now();
    let mut prev = start
        .checked_sub_signed(chrono::Duration::nanoseconds(i64::from(
            start.timestamp_subsec_nanos(),
        )))
        .unwrap_or(start);
    loop {
        let now = Local::now();
        let Some(next) = schedule.next(&prev, &now) else {
            tracing::warn!("the schedule has no further firing; stopping");
            return;
        };
        let wait = next.signed_duration_since(now).to_std().unwrap_or_default();
        tokio::select! {
            () = stop.cancelled() => return,
            () = events.closed() => return,
            () = tokio::time::sleep(wait) => {}
        }
        prev = next;
        let (done, verdict) = oneshot::channel();
        let event = InputEvent {
            data: Bytes::new(),
            metadata: tick_metadata(),
            done,
        };
        tokio::select! {
            () = stop.cancelled() => return,
            sent = events.send(event) => if sent.is_err() { return },
        }
        // No overlap: the next firing is looked for only after the app's answer.
        tokio::select! {
            () = stop.cancelled() => return,
            verdict = verdict => match verdict {
                Ok(Ok(_)) => tracing::debug!("tick delivered"),
                Ok(Err(error)) => tracing::warn!(%error, "the app did not take the tick"),
                Err(_) => tracing::debug!("tick finished without a verdict"),
            },
        }
    }
}

#[async_trait]
impl InputBinding for CronBinding {
    async fn read(&self) -> Result<mpsc::Receiver<InputEvent>, BindingError> {
        if self.stop.is_cancelled() {
            return Err(BindingError::backend("the cron binding was stopped"));
        }
        if self.reading.swap(true, Ordering::SeqCst) {
            return Err(BindingError::backend("the cron binding is already running"));
        }
        let (tx, rx) = mpsc::channel(1);
        let span = tracing::info_span!("cron", schedule = %self.config.text);
        tokio::spawn(ticks(self.config.schedule.clone(), tx, self.stop.clone()).instrument(span));
        Ok(rx)
    }
}

#[async_trait]
impl OutputBinding for CronBinding {
    fn operations(&self) -> &'static [&'static str] {
        &["delete"]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        if request.operation != "delete" {
            return Err(BindingError::unsupported(
                &request.operation,
                self.operations(),
            ));
        }
        self.stop.cancel();
        Ok(InvokeResponse {
            data: None,
            metadata: BTreeMap::from([
                ("schedule".to_owned(), self.config.text.clone()),
                ("stopTimeUTC".to_owned(), go_time::time_string(Utc::now())),
            ]),
        })
    }
}

#[cfg(test)]
mod tests;

#[async_trait]
impl Settings for CronConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Binding(CronBinding::binding(self)))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(CronConfig::from_metadata(md)?))
}
