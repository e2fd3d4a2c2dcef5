//! The operator's one error type. Reconcilers return it; `error_policy` turns it into a per-object
//! backoff and a metric labelled by [`Error::kind`] (a bounded label, never the error text).

/// Why a reconcile, or the operator itself, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("{action}: {source}")]
    Api {
        /// What the call was for, for example `get Secret prod/redis`.
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The object lacks something the apiserver always sets (a namespace, a uid).
    #[error("{object} has no {field}")]
    Incomplete { object: String, field: &'static str },
    /// Building the Kubernetes client failed.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The admin port could not be bound or served.
    #[error("admin server on {addr}: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The sidecar API port could not be bound or served.
    #[error("sidecar API on {addr}: {source}")]
    SidecarApi {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A flag's value is out of range.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    /// The Subscription conversion webhook could not start or stopped serving.
    #[error(transparent)]
    Conversion(#[from] crate::conversion::Error),
    /// The control-plane CA could not be loaded or created.
    #[error("the control-plane CA: {0}")]
    Ca(#[from] crate::ca::CaError),
    /// A controller's watch loop ended while the operator was not shutting down.
    #[error("the {0} controller stopped unexpectedly")]
    ControllerStopped(&'static str),
}

impl Error {
    /// Wraps a Kubernetes API error with what the call was for.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Api { action, source }
    }

    /// The metric label of this error: one of a fixed set.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.is_conflict() => "conflict",
            Error::Api {
                source: kube::Error::Api(_),
                ..
            } => "api_status",
            Error::Api { .. } => "api_transport",
            Error::Incomplete { .. } => "incomplete_object",
            Error::Client(_) => "client",
            Error::Admin { .. } => "admin",
            Error::SidecarApi { .. } => "sidecar_api",
            Error::Metrics(_) => "metrics",
            Error::ControllerStopped(_) => "controller_stopped",
            Error::Flag { .. } => "flag",
            Error::Conversion(_) => "conversion_webhook",
            Error::Ca(_) => "ca",
        }
    }
}

/// `Result` with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_bounded_labels() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        let conflict = Error::api("patch")(status(409, "Conflict"));
        assert_eq!(conflict.kind(), "conflict");
        assert!(conflict.to_string().starts_with("patch: "), "{conflict}");
        let internal = Error::api("get")(status(500, "InternalError"));
        assert_eq!(internal.kind(), "api_status");
        let incomplete = Error::Incomplete {
            object: "Component a".into(),
            field: "namespace",
        };
        assert_eq!(incomplete.kind(), "incomplete_object");
        assert_eq!(incomplete.to_string(), "Component a has no namespace");
    }
}
