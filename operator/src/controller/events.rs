//! Events (events.k8s.io/v1, which `kubectl get events` shows as core Events). They are
//! best-effort (a failed publish is logged, not retried) and never made in steady state: validated
//! kinds publish one when their verdict changes; workload warnings are published only if the same
//! warning is not already recorded for the object, so a restarted operator does not repeat them.
//! Each is one create: nothing is kept once it is sent (kube's `Recorder` keeps every Event it
//! sent for six minutes to count repeats, which a burst of first verdicts turns into megabytes).

use super::{Context, FIELD_MANAGER};
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, PostParams};

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

/// The Event about `regarding`, sent at `now`: named after the object and the time, as
/// client-go's recorder names them.
pub(crate) fn event(
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    now: Timestamp,
) -> Event {
    let name = regarding.name.as_deref().unwrap_or(FIELD_MANAGER);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(action.to_owned()),
        reason: Some(reason.to_owned()),
        note: Some(note),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(FIELD_MANAGER.to_owned()),
        reporting_instance: Some(FIELD_MANAGER.to_owned()),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        ..Event::default()
    }
}

impl Context {
    /// Publishes an Event about `regarding`; a failure is logged.
    pub(crate) async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = event(regarding, type_, reason, action, note, Timestamp::now());
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(%error, reason, "cannot publish an Event");
        }
    }

    /// Publishes a Warning about `regarding` unless one with this reason and note already exists
    /// (Events expire after an hour by default, so a lasting problem is reported again then).
    pub(crate) async fn warn_once(
        &self,
        regarding: &ObjectReference,
        reason: &str,
        note: String,
    ) -> Result<()> {
        let namespace = regarding.namespace.as_deref().unwrap_or_default();
        let uid = regarding.uid.as_deref().unwrap_or_default();
        let events: Api<CoreEvent> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("involvedObject.uid={uid},reason={reason}");
        let existing = events
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(Error::api(format!(
                "list Events in {namespace} ({selector})"
            )))?;
        if existing
            .items
            .iter()
            .any(|e| e.message.as_deref() == Some(note.as_str()))
        {
            return Ok(());
        }
        self.publish(regarding, EventType::Warning, reason, "Reconcile", note)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reason_and_reporter() {
        let regarding = ObjectReference {
            kind: Some("Component".to_owned()),
            name: Some("statestore".to_owned()),
            namespace: Some("shop".to_owned()),
            uid: Some("u-1".to_owned()),
            ..ObjectReference::default()
        };
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let made = event(
            &regarding,
            EventType::Warning,
            "UnknownType",
            "Validate",
            "spec.type is wrong".to_owned(),
            now,
        );
        assert_eq!(
            made.metadata.name.as_deref(),
            Some(format!("statestore.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(made.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(made.regarding.as_ref(), Some(&regarding));
        assert_eq!(made.type_.as_deref(), Some("Warning"));
        assert_eq!(made.reason.as_deref(), Some("UnknownType"));
        assert_eq!(made.action.as_deref(), Some("Validate"));
        assert_eq!(made.note.as_deref(), Some("spec.type is wrong"));
        assert_eq!(made.reporting_controller.as_deref(), Some(FIELD_MANAGER));
        assert_eq!(made.event_time, Some(MicroTime(now)));
        let normal = event(
            &regarding,
            EventType::Normal,
            "Valid",
            "Validate",
            String::new(),
            now,
        );
        assert_eq!(normal.type_.as_deref(), Some("Normal"));
    }
}
