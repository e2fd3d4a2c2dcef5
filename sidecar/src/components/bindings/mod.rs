//! Bindings: output bindings the app invokes through `/v1.0/bindings/{name}`, and input bindings
//! whose events the runtime POSTs to the app. A component may be either or both; the runtime
//! decides which side runs from what the implementation offers and the `direction` metadata.

pub mod cron;
mod go_time;
pub mod http;
pub mod localstorage;
pub mod mqtt;
pub mod postgres;
pub mod redis;

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One call of an output binding, as the API received it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeRequest {
    /// `create`, `get`, `delete`, `query`, … (what the binding understands).
    pub operation: String,
    /// The request's `data`, serialised to JSON again as Dapr does (a JSON string keeps its
    /// quotes); empty when the request had none.
    pub data: Bytes,
    /// Request metadata (`key`, `path`, `sql`, …) plus the trace headers the runtime adds.
    pub metadata: BTreeMap<String, String>,
}

/// What an output binding answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvokeResponse {
    /// Returned to the app as the body (200); `None` gives 204.
    pub data: Option<Bytes>,
    /// Returned to the app as `metadata.<key>` headers.
    pub metadata: BTreeMap<String, String>,
}

/// Why a binding call failed.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// The operation is not one this binding supports.
    #[error("binding does not support operation {operation}; supported: {supported}")]
    UnsupportedOperation {
        operation: String,
        supported: String,
    },
    /// The request lacks something the operation needs, or has it malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The backend failed. Metadata, when the backend produced some, still reaches the app.
    #[error("{message}")]
    Backend {
        message: String,
        metadata: BTreeMap<String, String>,
    },
}

impl BindingError {
    pub fn backend(message: impl Into<String>) -> Self {
        BindingError::Backend {
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Metadata to return as headers even though the call failed.
    pub fn metadata(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            BindingError::Backend { metadata, .. } => Some(metadata),
            _ => None,
        }
    }

    pub fn unsupported(operation: &str, supported: &[&str]) -> Self {
        BindingError::UnsupportedOperation {
            operation: operation.to_owned(),
            supported: supported.join(", "),
        }
    }
}

/// An output binding.
#[async_trait]
pub trait OutputBinding: Send + Sync + 'static {
    /// The operations `invoke` accepts.
    fn operations(&self) -> &'static [&'static str];

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError>;

    /// Releases connections; called once at shutdown.
    async fn close(&self) {}
}

/// One event of an input binding, with the means to report how the app took it.
#[derive(Debug)]
pub struct InputEvent {
    /// Sent to the app as the request body.
    pub data: Bytes,
    /// Sent to the app as request headers.
    pub metadata: BTreeMap<String, String>,
    /// The runtime's verdict once delivery is over: `Ok(body)` when the app answered 2xx (with
    /// its answer), `Err` when it did not after retries. A binding whose source can redeliver
    /// (MQTT) acks only on `Ok`; others (cron) just log. Dropping the receiver is allowed.
    pub done: oneshot::Sender<Result<Bytes, String>>,
}

/// An input binding.
#[async_trait]
pub trait InputBinding: Send + Sync + 'static {
    /// Starts reading; events arrive on the returned channel until the binding is closed. The
    /// runtime calls this once, only after the app is ready and has accepted the OPTIONS probe.
    async fn read(&self) -> Result<mpsc::Receiver<InputEvent>, BindingError>;

    /// Stops reading and releases connections; called once at shutdown.
    async fn close(&self) {}
}

/// A binding component: one or both sides.
#[derive(Clone)]
pub struct Binding {
    pub input: Option<Arc<dyn InputBinding>>,
    pub output: Option<Arc<dyn OutputBinding>>,
}

impl Binding {
    /// Closes the component once (a component that is both sides is closed through its input).
    pub async fn close(&self) {
        match (&self.input, &self.output) {
            (Some(input), _) => input.close().await,
            (None, Some(output)) => output.close().await,
            (None, None) => {}
        }
    }

    pub fn output(binding: Arc<dyn OutputBinding>) -> Self {
        Binding {
            input: None,
            output: Some(binding),
        }
    }

    pub fn input(binding: Arc<dyn InputBinding>) -> Self {
        Binding {
            input: Some(binding),
            output: None,
        }
    }
}

/// The runtime's own binding metadata: `route` (where input events go; default the component
/// name) and `direction` (`input`, `output`, or both comma-separated; unset means whatever the
/// implementation offers, with the OPTIONS probe deciding the input side).
#[derive(Debug, Clone, PartialEq)]
pub struct BindingSettings {
    pub route: String,
    pub direction: Option<Direction>,
}

/// The sides named by `direction`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Direction {
    pub input: bool,
    pub output: bool,
}

impl BindingSettings {
    pub fn new(name: &str, route: Option<&str>, direction: Option<&str>) -> Result<Self, String> {
        let route = route
            .map(|r| r.trim().trim_start_matches('/'))
            .filter(|r| !r.is_empty())
            .unwrap_or(name)
            .to_owned();
        let direction = match direction.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(text) => {
                let mut dir = Direction {
                    input: false,
                    output: false,
                };
                for part in text.split(',').map(str::trim) {
                    match part.to_ascii_lowercase().as_str() {
                        "input" => dir.input = true,
                        "output" => dir.output = true,
                        _ => {
                            return Err(format!(
                                "metadata field \"direction\": {text:?} is not \"input\", \"output\" or \"input, output\""
                            ));
                        }
                    }
                }
                Some(dir)
            }
        };
        Ok(BindingSettings { route, direction })
    }

    /// Whether the input side may run (it then still needs the app's OPTIONS consent unless
    /// `direction` names `input`).
    pub fn input_allowed(&self) -> bool {
        self.direction.is_none_or(|d| d.input)
    }

    pub fn output_allowed(&self) -> bool {
        self.direction.is_none_or(|d| d.output)
    }

    /// The OPTIONS probe is skipped when `direction` explicitly names `input`.
    pub fn needs_probe(&self) -> bool {
        !self.direction.is_some_and(|d| d.input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_defaults_to_the_name_and_direction_parses() {
        let s = BindingSettings::new("tick", None, None).expect("valid");
        assert_eq!(s.route, "tick");
        assert!(s.input_allowed() && s.output_allowed() && s.needs_probe());
        let s = BindingSettings::new("tick", Some("/cron"), Some("input")).expect("valid");
        assert_eq!(s.route, "cron");
        assert!(s.input_allowed() && !s.output_allowed() && !s.needs_probe());
        let s = BindingSettings::new("b", None, Some("input, Output")).expect("valid");
        assert!(s.input_allowed() && s.output_allowed());
        let err = BindingSettings::new("b", None, Some("sideways")).expect_err("invalid");
        assert!(err.contains("direction"), "{err}");
    }
}
