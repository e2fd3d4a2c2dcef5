//! Events, through `kube::runtime::events::Recorder`. They are best-effort (a failed publish is
//! logged, not retried) and never made in steady state: validated kinds publish one when their
//! verdict changes; workload warnings are published only if the same warning is not already
//! recorded for the object, so a restarted operator does not repeat them.

use super::Context;
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::events::{Event, EventType};

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
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
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
