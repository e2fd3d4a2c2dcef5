//! Kubernetes mode: what to load comes from the operator's sidecar API
//! (`tandem_crds::control_plane`). The sidecar authenticates with its pod's projected
//! ServiceAccount token (read from its file on every connection, so a rotated token is picked up)
//! and names its namespace, pod and app id. [`ControlPlane::fetch_initial`] gets the first set
//! before any port is bound; [`ControlPlane::watch`] then follows the update stream for the life of
//! the sidecar, reconnecting with backoff whenever it ends. With the control plane's trust
//! anchors ([`trust`]) every request goes over TLS to the operator's verified SPIFFE ID; without
//! them, plain HTTP (a cluster whose control plane runs no CA).

mod trust;

pub use trust::ControlPlaneTrust;

use crate::resiliency::Backoff;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tandem_crds::control_plane::{
    CertificateRequest, CertificateResponse, Resources, certificate_path, resources_path,
    secrets_path,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The pause before asking the operator again, or reconnecting to its stream.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));

/// Why the operator could not be asked, or said no.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("cannot read the operator token {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operator at {address} cannot be reached: {message}")]
    Unreachable { address: String, message: String },
    #[error("the operator at {address} is not trusted: {reason}")]
    Untrusted { address: String, reason: String },
    #[error("the operator refused this sidecar ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the operator sent something that is not a resource set: {0}")]
    Malformed(String),
}

impl ControlPlaneError {
    /// Worth asking again: the operator may be starting, or a network blip.
    pub fn is_transient(&self) -> bool {
        match self {
            ControlPlaneError::Unreachable { .. } | ControlPlaneError::Malformed(_) => true,
            ControlPlaneError::Refused { status, .. } => *status >= 500,
            ControlPlaneError::Token { .. } | ControlPlaneError::Untrusted { .. } => false,
        }
    }
}

/// Who this sidecar is, and where its operator is.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// `host:port` of the operator's sidecar API.
    pub address: String,
    pub token_file: PathBuf,
    pub namespace: String,
    pub pod: String,
    pub app_id: String,
    /// `--config`: the Configuration's name.
    pub configuration: Option<String>,
    /// The anchors and identity the operator is verified against (`None`: plain HTTP).
    trust: Option<Arc<ControlPlaneTrust>>,
    http: reqwest::Client,
}

impl ControlPlane {
    pub fn new(
        address: String,
        token_file: PathBuf,
        namespace: String,
        pod: String,
        app_id: String,
        configuration: Option<String>,
        trust: Option<ControlPlaneTrust>,
    ) -> Result<ControlPlane, String> {
        let mut builder = crate::http_client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(trust) = &trust {
            let tls = trust
                .client_config()
                .map_err(|e| format!("the operator client's TLS: {e}"))?;
            builder = builder.use_preconfigured_tls(tls).https_only(true);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the operator client: {e}"))?;
        Ok(ControlPlane {
            address,
            token_file,
            namespace,
            pod,
            app_id,
            configuration,
            trust: trust.map(Arc::new),
            http,
        })
    }

    /// What the operator is verified against (`None`: it is not).
    pub fn trust(&self) -> Option<&ControlPlaneTrust> {
        self.trust.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.trust.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A failed request: refused at the TLS layer (with the reason), or unreachable.
    fn unreachable(&self, error: impl std::error::Error + 'static) -> ControlPlaneError {
        let refusal = self.trust.as_ref().and_then(|t| t.take_refusal());
        if let Some(reason) = refusal.or_else(|| trust::tls_refusal(&error)) {
            return ControlPlaneError::Untrusted {
                address: self.address.clone(),
                reason,
            };
        }
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ControlPlaneError::Unreachable {
            address: self.address.clone(),
            message,
        }
    }

    fn url(&self, watch: bool) -> String {
        let mut url = format!(
            "{}://{}{}?appId={}",
            self.scheme(),
            self.address,
            resources_path(&self.namespace, &self.pod),
            self.app_id
        );
        if let Some(config) = &self.configuration {
            url.push_str("&config=");
            url.push_str(config);
        }
        if watch {
            url.push_str("&watch=true");
        }
        url
    }

    async fn request(&self, watch: bool) -> Result<reqwest::Response, ControlPlaneError> {
        self.get(self.url(watch), !watch).await
    }

    /// `GET url` with the token; `bounded`: with a time limit (not for streams).
    async fn get(
        &self,
        url: String,
        bounded: bool,
    ) -> Result<reqwest::Response, ControlPlaneError> {
        self.send(self.http.get(url), bounded).await
    }

    /// Sends `request` with the token (read again from its file: a rotated token is picked
    /// up); a non-2xx answer is a [`ControlPlaneError::Refused`] with the operator's message.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        bounded: bool,
    ) -> Result<reqwest::Response, ControlPlaneError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|source| ControlPlaneError::Token {
                path: self.token_file.clone(),
                source,
            })?;
        let mut request = request.bearer_auth(token.trim());
        if bounded {
            request = request.timeout(Duration::from_secs(10));
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(ControlPlaneError::Refused {
            status: status.as_u16(),
            message,
        })
    }

    fn secrets_url(&self, name: Option<&str>) -> String {
        let base = secrets_path(&self.namespace, &self.pod);
        let name = name
            .map(|n| {
                format!(
                    "/{}",
                    percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .unwrap_or_default();
        format!(
            "{}://{}{base}{name}?appId={}",
            self.scheme(),
            self.address,
            self.app_id
        )
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, ControlPlaneError> {
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ControlPlaneError::Malformed(e.to_string()))
    }

    /// One Kubernetes Secret of this pod's namespace (`None`: it does not exist).
    pub async fn secret(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ControlPlaneError> {
        match self.get(self.secrets_url(Some(name)), true).await {
            Ok(response) => self.json(response).await.map(Some),
            Err(ControlPlaneError::Refused { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every Kubernetes Secret of this pod's namespace that its scopes allow.
    pub async fn secrets(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, ControlPlaneError> {
        let response = self.get(self.secrets_url(None), true).await?;
        self.json(response).await
    }

    /// A workload certificate from the control-plane CA for the public key of `csr_pem` (the
    /// key itself never leaves the sidecar). What comes back is checked by the caller
    /// (`security::issuer`): against the injected trust anchors when there are any.
    pub async fn certificate(
        &self,
        csr_pem: String,
    ) -> Result<CertificateResponse, ControlPlaneError> {
        let url = format!(
            "{}://{}{}",
            self.scheme(),
            self.address,
            certificate_path(&self.namespace, &self.pod)
        );
        let body = CertificateRequest {
            certificate_signing_request: csr_pem,
        };
        let response = self.send(self.http.post(url).json(&body), true).await?;
        self.json(response).await
    }

    /// The current set, once.
    pub async fn fetch(&self) -> Result<Resources, ControlPlaneError> {
        let response = self.request(false).await?;
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ControlPlaneError::Malformed(e.to_string()))
    }

    /// The current set, asking again while the failure is transient, for at most `limit`.
    pub async fn fetch_initial(&self, limit: Duration) -> Result<Resources, ControlPlaneError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut backoff = RECONNECT;
        loop {
            let error = match self.fetch().await {
                Ok(resources) => return Ok(resources),
                Err(error) => error,
            };
            let delay = backoff.next();
            if !error.is_transient() || tokio::time::Instant::now() + delay >= deadline {
                return Err(error);
            }
            tracing::warn!(%error, "asking the operator again");
            tokio::time::sleep(delay).await;
        }
    }

    /// Follows the update stream until `shutdown`, publishing each set that differs from the
    /// last one on `updates`. Reconnects with backoff when the stream ends or fails.
    pub async fn watch(self, updates: watch::Sender<Resources>, shutdown: CancellationToken) {
        let mut backoff = RECONNECT;
        loop {
            let followed = tokio::select! {
                () = shutdown.cancelled() => return,
                followed = self.follow(&updates) => followed,
            };
            match followed {
                // A stream that delivered ends by design (its lifetime): reconnect at once.
                Ok(true) => backoff.reset(),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "operator stream failed; reconnecting"),
            }
            if !backoff.sleep(&shutdown).await {
                return;
            }
        }
    }

    /// One stream, to its end; whether it delivered anything.
    async fn follow(&self, updates: &watch::Sender<Resources>) -> Result<bool, ControlPlaneError> {
        let response = self.request(true).await?;
        let mut body = response.bytes_stream();
        let mut lines = LineBuffer::default();
        let mut delivered = false;
        while let Some(chunk) = body.next().await {
            let chunk: Bytes = chunk.map_err(|e| self.unreachable(e))?;
            for line in lines.push(&chunk) {
                let resources: Resources = serde_json::from_slice(&line)
                    .map_err(|e| ControlPlaneError::Malformed(e.to_string()))?;
                delivered = true;
                updates.send_if_modified(|current| {
                    let changed = *current != resources;
                    if changed {
                        *current = resources;
                    }
                    changed
                });
            }
        }
        Ok(delivered)
    }
}

/// Splits a byte stream into lines (NDJSON); empty lines are skipped.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds `chunk`; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line.to_vec());
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests;
