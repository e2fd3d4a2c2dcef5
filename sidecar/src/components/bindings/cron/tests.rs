//! Schedules as Dapr reads them, firing times, and the binding against the real clock.

use super::*;
use std::time::Instant;

fn config(schedule: &str) -> Result<CronConfig, MetadataError> {
    CronConfig::from_metadata(&Metadata::new([(
        "schedule".to_owned(),
        schedule.to_owned(),
    )]))
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

fn next(schedule: &str, prev: &str, now: &str) -> String {
    let schedule = Schedule::parse(schedule).expect("valid schedule");
    let next = schedule.next(&utc(prev), &utc(now)).expect("a next firing");
    next.to_rfc3339()
}

#[test]
fn daprs_schedule_forms_parse() {
    for text in [
        "*/5 * * * *",
        "*/15 * * * * *",
        "0 30 9 * * MON-FRI",
        "0/10 * * * * *",
        "0 0 * * ?",
        "@every 15m",
        "@every 1s",
        "@every 1h30m",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ] {
        if let Err(e) = config(text) {
            panic!("{text:?} refused: {e}");
        }
    }
    assert_eq!(
        Schedule::parse("@every 500ms"),
        Ok(Schedule::Every(Duration::from_secs(1)))
    );
    assert_eq!(
        Schedule::parse("@EVERY 1m30s"),
        Ok(Schedule::Every(Duration::from_secs(90)))
    );
}

#[test]
fn bad_schedules_are_refused_naming_the_field() {
    for text in [
        "",
        "* * *",
        "* * * * * * *",
        "61 * * * *",
        "* * 32 * *",
        "@every",
        "@every soon",
        "@sometimes",
        "every minute",
    ] {
        let err = config(text).expect_err(text);
        assert_eq!(err.field, "schedule", "{text:?}: {err}");
    }
}

#[test]
fn firing_times_follow_robfig() {
    // Five fields start at second 0; six fields carry seconds.
    assert_eq!(
        next(
            "*/5 * * * *",
            "2024-03-09T10:01:00Z",
            "2024-03-09T10:01:00Z"
        ),
        "2024-03-09T10:05:00+00:00"
    );
    assert_eq!(
        next(
            "30 * * * * *",
            "2024-03-09T10:00:00Z",
            "2024-03-09T10:00:00Z"
        ),
        "2024-03-09T10:00:30+00:00"
    );
    // Weekday 0 is Sunday (2024-03-09 is a Saturday).
    assert_eq!(
        next("0 0 * * 0", "2024-03-09T12:00:00Z", "2024-03-09T12:00:00Z"),
        "2024-03-10T00:00:00+00:00"
    );
    // Day of month and day of week both restricted: either matches (the 4th is a Monday).
    assert_eq!(
        next("0 0 1 * 1", "2024-03-02T00:00:00Z", "2024-03-02T00:00:00Z"),
        "2024-03-04T00:00:00+00:00"
    );
    // A clock that reads a little before the previous firing does not fire it twice.
    assert_eq!(
        next(
            "*/5 * * * *",
            "2024-03-09T10:05:00Z",
            "2024-03-09T10:04:59Z"
        ),
        "2024-03-09T10:10:00+00:00"
    );
    // `@every` keeps its rhythm and skips firings that went by while the app was busy.
    assert_eq!(
        next("@every 15m", "2024-03-09T10:00:00Z", "2024-03-09T10:00:05Z"),
        "2024-03-09T10:15:00+00:00"
    );
    assert_eq!(
        next("@every 15m", "2024-03-09T10:00:00Z", "2024-03-09T10:31:00Z"),
        "2024-03-09T10:45:00+00:00"
    );
}

fn start(schedule: &str) -> Arc<CronBinding> {
    Arc::new(CronBinding::new(&config(schedule).expect("valid")))
}

async fn next_event(rx: &mut mpsc::Receiver<InputEvent>, within: Duration) -> Option<InputEvent> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test]
async fn every_second_fires_repeatedly_with_daprs_metadata() {
    let cron = start("@every 1s");
    let mut rx = cron.read().await.expect("read");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut fired = 0;
    while let Some(event) =
        next_event(&mut rx, deadline.saturating_duration_since(Instant::now())).await
    {
        assert!(event.data.is_empty());
        assert_eq!(
            event.metadata.get("timeZone").map(String::as_str),
            Some("Local")
        );
        let read = event.metadata.get("readTimeUTC").expect("readTimeUTC");
        assert!(read.ends_with(" +0000 UTC"), "{read}");
        let _ = event.done.send(Ok(Bytes::new()));
        fired += 1;
    }
    assert!(fired >= 2, "fired {fired} times in 3 s");
    assert!(cron.read().await.is_err(), "a second read is refused");
}

#[tokio::test]
async fn ticks_wait_for_the_app_and_skip_missed_firings() {
    let cron = start("@every 1s");
    let mut rx = cron.read().await.expect("read");
    let first = next_event(&mut rx, Duration::from_secs(3))
        .await
        .expect("first tick");
    // While the app holds the tick, nothing else fires.
    assert!(
        next_event(&mut rx, Duration::from_millis(2500))
            .await
            .is_none(),
        "a tick overlapped one still in the app"
    );
    let _ = first.done.send(Ok(Bytes::new()));
    let second = next_event(&mut rx, Duration::from_millis(1500))
        .await
        .expect("ticks resume once the app answers");
    let _ = second.done.send(Err("app said no".to_owned()));
    // The firings missed while the first tick was held are not delivered in a burst.
    assert!(
        next_event(&mut rx, Duration::from_millis(300))
            .await
            .is_none(),
        "missed firings were queued"
    );
}

#[tokio::test]
async fn delete_stops_the_schedule() {
    let cron = start("@every 1s");
    let mut rx = cron.read().await.expect("read");
    let tick = next_event(&mut rx, Duration::from_secs(3))
        .await
        .expect("tick");
    let _ = tick.done.send(Ok(Bytes::new()));

    let request = |op: &str| InvokeRequest {
        operation: op.to_owned(),
        data: Bytes::new(),
        metadata: BTreeMap::new(),
    };
    let err = cron.invoke(request("create")).await.expect_err("create");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
    let answer = cron.invoke(request("delete")).await.expect("delete");
    assert_eq!(
        answer.metadata.get("schedule").map(String::as_str),
        Some("@every 1s")
    );
    assert!(answer.metadata.contains_key("stopTimeUTC"));
    // The ticker ends, closing the channel, and fires no more.
    let after = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(matches!(after, Ok(None)), "the schedule kept running");
    assert!(
        cron.read().await.is_err(),
        "a stopped binding cannot restart"
    );
}

#[tokio::test]
async fn the_component_type_builds_both_sides() {
    use crate::components::factory::{self, Instance};
    let md = Metadata::new([("schedule".to_owned(), "@daily".to_owned())]);
    let config =
        factory::settings("bindings.cron", &md, std::path::Path::new(".")).expect("config");
    let Ok(Instance::Binding(binding)) = config.init().await else {
        panic!("bindings.cron did not build a binding");
    };
    assert!(binding.input.is_some() && binding.output.is_some());
    let bad = Metadata::new([("schedule".to_owned(), "every day".to_owned())]);
    let err = factory::settings("bindings.cron", &bad, std::path::Path::new("."))
        .expect_err("bad schedule");
    assert_eq!(err.field, "schedule");
}
