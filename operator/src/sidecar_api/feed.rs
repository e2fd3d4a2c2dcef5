//! One sidecar's update stream: look at the cache whenever it changes, resolve secrets when the
//! in-scope Components changed, and send the whole set only when it differs from the last one sent.

use super::SidecarApi;
use super::resources::{Resources, Wanted, resolve_secrets, secrets_needed};
use super::routes::ApiError;
use bytes::Bytes;
use futures_util::Stream;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tandem_crds::Component;
use tokio::sync::watch;
use tokio::time::Instant;

/// The state of one stream.
pub(crate) struct Feed {
    api: Arc<SidecarApi>,
    namespace: String,
    app_id: String,
    configuration: Option<String>,
    changes: watch::Receiver<u64>,
    /// The in-scope Components as cached, before secrets, and the Secrets read for them.
    unresolved: Option<Vec<Component>>,
    secrets: BTreeMap<String, Secret>,
}

impl Feed {
    pub(crate) fn new(api: Arc<SidecarApi>, wanted: &Wanted<'_>) -> Feed {
        let mut changes = api.index.changes();
        changes.mark_unchanged();
        Feed {
            namespace: wanted.namespace.to_owned(),
            app_id: wanted.app_id.to_owned(),
            configuration: wanted.configuration.map(str::to_owned),
            changes,
            unresolved: None,
            secrets: BTreeMap::new(),
            api,
        }
    }

    /// What the sidecar may see now, secrets resolved.
    pub(crate) async fn next_resources(&mut self) -> Result<Resources, ApiError> {
        let wanted = Wanted {
            namespace: &self.namespace,
            app_id: &self.app_id,
            configuration: self.configuration.as_deref(),
        };
        let mut resources = self.api.index.resources(&wanted);
        if self.unresolved.as_ref() != Some(&resources.components) {
            self.secrets = self.read_secrets(&resources.components).await?;
            self.unresolved = Some(resources.components.clone());
        }
        resolve_secrets(&mut resources.components, &self.secrets);
        Ok(resources)
    }

    /// The Secrets `components` refer to, from the stream's own namespace only.
    async fn read_secrets(
        &self,
        components: &[Component],
    ) -> Result<BTreeMap<String, Secret>, ApiError> {
        let secrets = Api::<Secret>::namespaced(self.api.client.clone(), &self.namespace);
        let mut found = BTreeMap::new();
        for name in secrets_needed(components) {
            let secret = secrets.get_opt(&name).await.map_err(|error| {
                ApiError::Unavailable(format!("reading Secret {}/{name}: {error}", self.namespace))
            })?;
            if let Some(secret) = secret {
                found.insert(name, secret);
            }
        }
        Ok(found)
    }

    /// The stream of JSON lines: `first`, then each new set, until the stream's lifetime is over,
    /// the operator shuts down, or reading fails (the sidecar reconnects).
    pub(crate) fn into_lines(
        self,
        first: Resources,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let deadline = Instant::now() + self.api.stream_lifetime;
        let open = OpenStream::new(Arc::clone(&self.api));
        let state = (self, Some(first.clone()), first, deadline, open);
        futures_util::stream::unfold(
            state,
            |(mut feed, pending, mut sent, deadline, open)| async move {
                if let Some(first) = pending {
                    return Some((Ok(line(&first)), (feed, None, sent, deadline, open)));
                }
                loop {
                    tokio::select! {
                        changed = feed.changes.changed() => changed.ok()?,
                        () = tokio::time::sleep_until(deadline) => return None,
                        () = feed.api.shutdown.cancelled() => return None,
                    }
                    let next = match feed.next_resources().await {
                        Ok(next) => next,
                        Err(error) => {
                            tracing::warn!(%error, "ending a sidecar stream");
                            return None;
                        }
                    };
                    if next != sent {
                        let bytes = line(&next);
                        sent = next;
                        return Some((Ok(bytes), (feed, None, sent, deadline, open)));
                    }
                }
            },
        )
    }
}

fn line(resources: &Resources) -> Bytes {
    // Serialising plain data cannot fail; an empty object would only make the sidecar look again.
    let mut bytes = serde_json::to_vec(resources).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// Counts an open stream in the metrics for as long as it lives.
struct OpenStream(Arc<SidecarApi>);

impl OpenStream {
    fn new(api: Arc<SidecarApi>) -> OpenStream {
        api.metrics.sidecar_streams_add(1);
        OpenStream(api)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.metrics.sidecar_streams_add(-1);
    }
}
