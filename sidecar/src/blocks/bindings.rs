//! Output bindings: `{operation, data, metadata}` to the named binding, with the trace context
//! added to the metadata as Dapr does. The component's answer (data and metadata) comes back;
//! its metadata travels with errors too.

use super::Sidecar;
use super::error::{BlockError, Code};
use super::invoke::trace::child_traceparent;
use crate::components::bindings::{InvokeRequest, InvokeResponse, OutputBinding};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The caller's trace context: `traceparent`, `tracestate` and `baggage` as it sent them.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
}

/// One output binding call.
#[derive(Debug, Clone, Default)]
pub struct OutputRequest {
    pub operation: String,
    /// `None` when the request had no data (or JSON `null`).
    pub data: Option<Bytes>,
    pub metadata: BTreeMap<String, String>,
}

/// The bindings block of one sidecar.
pub struct BindingsBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn bindings(&self) -> BindingsBlock<'_> {
        BindingsBlock { sidecar: self }
    }
}

/// What the component sees: the data (empty when absent) and the request metadata plus the
/// trace context (a child of the caller's `traceparent`, and its `tracestate` and `baggage`).
pub fn to_invoke_request(req: OutputRequest, trace: &TraceContext) -> InvokeRequest {
    let mut metadata = req.metadata;
    metadata.entry("traceparent".to_owned()).or_insert_with(|| {
        // The request's span when there is one (its id is exported), else a child of
        // what the caller sent.
        crate::traces::context::traceparent(&opentelemetry::Context::current())
            .map(|(tp, _)| tp)
            .unwrap_or_else(|| child_traceparent(trace.traceparent.as_deref()))
    });
    for (name, value) in [
        ("tracestate", &trace.tracestate),
        ("baggage", &trace.baggage),
    ] {
        if let Some(value) = value {
            metadata
                .entry(name.to_owned())
                .or_insert_with(|| value.clone());
        }
    }
    InvokeRequest {
        operation: req.operation,
        data: req.data.unwrap_or_default(),
        metadata,
    }
}

impl BindingsBlock<'_> {
    fn output(&self, name: &str) -> Result<Arc<dyn OutputBinding>, BlockError> {
        let not_found = || {
            BlockError::new(
                Code::InvokeOutputBinding,
                format!(
                    "error invoking output binding {name}: couldn't find output binding {name}"
                ),
            )
        };
        let registry = self.sidecar.registry();
        let (slot, binding) = registry.binding(name).map_err(|_| not_found())?;
        let allowed = slot
            .planned
            .binding
            .as_ref()
            .is_none_or(|s| s.output_allowed());
        match &binding.output {
            Some(output) if allowed => Ok(output.clone()),
            _ => Err(not_found()),
        }
    }

    /// Invokes the output binding `name`.
    pub async fn invoke(
        &self,
        name: &str,
        req: OutputRequest,
        trace: &TraceContext,
    ) -> Result<InvokeResponse, BlockError> {
        let binding = self.output(name)?;
        let request = to_invoke_request(req, trace);
        let operation = request.operation.clone();
        let started = std::time::Instant::now();
        let result = binding.invoke(request).await;
        // Bounded labels: an operation the binding does not know is counted as "unsupported".
        let op_label = if binding.operations().contains(&operation.as_str()) {
            operation.as_str()
        } else {
            "unsupported"
        };
        self.sidecar.metrics().components().output_binding(
            name,
            op_label,
            result.is_ok(),
            started.elapsed(),
        );
        result.map_err(|e| {
            let metadata = e.metadata().cloned().unwrap_or_default();
            BlockError::new(
                Code::InvokeOutputBinding,
                format!("error invoking output binding {name}: {e}"),
            )
            .with_metadata(metadata)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_is_added_as_a_child() {
        let trace = TraceContext {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: None,
            baggage: Some("k=v".into()),
        };
        let mut md = BTreeMap::new();
        md.insert("key".to_owned(), "a".to_owned());
        let req = to_invoke_request(
            OutputRequest {
                operation: "create".into(),
                data: Some(Bytes::from_static(br#""hi""#)),
                metadata: md,
            },
            &trace,
        );
        assert_eq!(&req.data[..], br#""hi""#);
        assert_eq!(req.metadata["key"], "a");
        assert_eq!(req.metadata["baggage"], "k=v");
        assert!(!req.metadata.contains_key("tracestate"));
        assert!(
            req.metadata["traceparent"].starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "child of the incoming trace: {}",
            req.metadata["traceparent"]
        );
        let none = to_invoke_request(OutputRequest::default(), &TraceContext::default());
        assert!(none.data.is_empty());
    }
}
