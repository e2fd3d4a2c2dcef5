//! Health: ready once components have settled, the app channel is up and the app's first
//! subscriptions are in place at their brokers (so a message published the moment the sidecar is
//! ready reaches the app); outbound-ready once components have settled (SDKs ask before their
//! app listens, so it must not wait for the app).

use super::Sidecar;
use super::error::{BlockError, Code};

/// The health block of one sidecar.
pub struct HealthBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn health(&self) -> HealthBlock<'_> {
        HealthBlock { sidecar: self }
    }
}

impl HealthBlock<'_> {
    /// `Ok` when ready; `asked_app_id` (Dapr's `appid` query) must be this app's when given.
    pub fn ready(&self, asked_app_id: Option<&str>) -> Result<(), BlockError> {
        let sc = self.sidecar;
        if let Some(asked) = asked_app_id
            && asked != sc.app_id()
        {
            return Err(BlockError::new(
                Code::HealthAppIdNotMatch,
                format!("dapr app-id does not match: {asked} != {}", sc.app_id()),
            ));
        }
        let mut waiting = Vec::new();
        if !sc.registry().settled() {
            waiting.push("components");
        }
        if !sc.app_ready() {
            waiting.push("app-channel");
        } else if !sc.subscribed() {
            waiting.push("subscriptions");
        } else if !sc.actor_runtime().settled() {
            waiting.push("actors");
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(BlockError::new(
                Code::HealthNotReady,
                format!("dapr is not ready: {waiting:?}"),
            ))
        }
    }

    pub fn outbound_ready(&self) -> Result<(), BlockError> {
        if self.sidecar.registry().settled() {
            Ok(())
        } else {
            Err(BlockError::new(
                Code::OutboundHealthNotReady,
                "dapr outbound is not ready: [components]",
            ))
        }
    }

    /// Asks the sidecar to shut down gracefully.
    pub fn shutdown(&self) {
        self.sidecar.shutdown().cancel();
    }
}
