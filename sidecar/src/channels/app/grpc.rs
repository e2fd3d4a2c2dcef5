//! The gRPC app channel (`--app-protocol grpc`): the app serves
//! `dapr.proto.runtime.v1.AppCallback` over h2c, and every request the sidecar makes of it
//! becomes that service's RPC, as daprd maps it — an invocation becomes `OnInvoke` (the HTTP
//! verb and query in `http_extension`, headers as metadata), a pub/sub event `OnTopicEvent`
//! (the CloudEvent's fields, its data decoded), a binding event `OnBindingEvent`, and the app's
//! subscriptions and input bindings come from `ListTopicSubscriptions` / `ListInputBindings`.
//! Like the HTTP channel, this is the only writer of `dapr-api-token` towards the app.

use super::grpc_mapping::{
    binding_request, bulk_outcomes, bulk_request, http_status, invoke_request, invoke_response,
    topic_outcome, topic_request,
};
use super::health::ProbeResult;
use super::{AppChannel, AppError, BulkEventDelivery, EventDelivery, Outcome, Unreachable};
use crate::metrics::grpc::{GrpcMetrics, MeasuredChannel};
use crate::pubsub::subscriptions::{BulkSubscribeJson, RoutesJson, RuleJson, SubscriptionJson};
use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_alpha_client::AppCallbackAlphaClient;
use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_client::AppCallbackHealthCheckClient;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Limited};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tandem_crds::annotations::headers;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// The channel to a gRPC app.
/// How long connecting to the app may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct GrpcAppChannel {
    authority: String,
    /// Every call to the app goes through this one measured channel (`dapr_grpc_io_client_*`).
    channel: MeasuredChannel<Channel>,
    /// `APP_API_TOKEN`: what this sidecar presents to its own app, and only to it.
    app_token: Option<HeaderValue>,
    max_message: usize,
    ready: AtomicBool,
}

impl GrpcAppChannel {
    /// `tls`: `--app-protocol grpcs` (TLS without checking the app's certificate, as daprd).
    pub fn new(
        address: &str,
        port: u16,
        tls: bool,
        app_token: Option<HeaderValue>,
        max_message: u64,
        metrics: Arc<GrpcMetrics>,
    ) -> Result<Self, String> {
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        let authority = format!("{host}:{port}");
        let endpoint = Endpoint::from_shared(format!("http://{authority}"))
            .map_err(|e| format!("invalid app address {authority}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        let channel = if tls {
            let connector = super::tls::GrpcsConnector::new(CONNECT_TIMEOUT)
                .map_err(|e| format!("TLS towards the app: {e}"))?;
            endpoint.connect_with_connector_lazy(connector)
        } else {
            endpoint.connect_lazy()
        };
        Ok(GrpcAppChannel {
            authority,
            channel: MeasuredChannel::new(channel, metrics),
            app_token,
            max_message: usize::try_from(max_message).unwrap_or(usize::MAX),
            ready: AtomicBool::new(false),
        })
    }

    fn client(&self) -> AppCallbackClient<MeasuredChannel<Channel>> {
        AppCallbackClient::new(self.channel.clone())
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message)
    }

    /// A request with the given metadata and the app's token (any caller's token removed).
    fn request<T>(&self, message: T, mut metadata: MetadataMap) -> tonic::Request<T> {
        metadata.remove(headers::API_TOKEN);
        if let Some(token) = self
            .app_token
            .as_ref()
            .and_then(|t| MetadataValue::try_from(t.as_bytes()).ok())
        {
            metadata.insert(headers::API_TOKEN, token);
        }
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = metadata;
        request
    }
}

/// Whether a failed call never reached the app (nothing listens, or the connection broke):
/// tonic reports those as UNAVAILABLE with the transport error as the source.
fn never_reached(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && std::error::Error::source(status).is_some()
}

fn metadata_of(map: &BTreeMap<String, String>) -> MetadataMap {
    let mut out = MetadataMap::new();
    for (k, v) in map {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
            MetadataValue::try_from(v.as_str()),
        ) {
            out.insert(key, value);
        }
    }
    out
}

#[async_trait]
impl AppChannel for GrpcAppChannel {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    async fn wait_until_reachable(&self, stop: CancellationToken) {
        if super::wait_for_port(&self.authority, stop).await {
            self.ready.store(true, Ordering::Release);
            tracing::info!(app = %self.authority, "app channel ready (gRPC)");
        }
    }

    async fn invoke(&self, req: Request<Body>) -> Result<Response<Body>, AppError> {
        let (parts, body) = req.into_parts();
        let body = Limited::new(body, self.max_message)
            .collect()
            .await
            .map_err(|e| AppError {
                message: format!("cannot read the request for the app: {e}"),
                unreachable: false,
                source: Some(e),
            })?
            .to_bytes();
        let (message, metadata) = invoke_request(&parts, body);
        let answer = self
            .client()
            .on_invoke(self.request(message, metadata))
            .await;
        match answer {
            Err(status) if never_reached(&status) => Err(AppError {
                message: format!("the app is unreachable: {}", status.message()),
                unreachable: true,
                source: Some(Box::new(status)),
            }),
            other => Ok(invoke_response(other)),
        }
    }

    async fn deliver_event(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable> {
        let message = topic_request(&event);
        let mut metadata = metadata_of(event.metadata);
        // daprd adds the pubsub's name to the message metadata it sends (`pubsubname`, as the
        // HTTP channel's header); SDKs hand it to the handler.
        if let Ok(name) = MetadataValue::try_from(event.pubsub) {
            metadata.insert("pubsubname", name);
        }
        if let Some(tp) = event
            .traceparent
            .and_then(|t| MetadataValue::try_from(t).ok())
        {
            metadata.insert(headers::TRACEPARENT, tp);
        }
        match self
            .client()
            .on_topic_event(self.request(message, metadata))
            .await
        {
            Ok(answer) => Ok(topic_outcome(answer.into_inner().status)),
            Err(status) if never_reached(&status) => Err(Unreachable),
            // daprd: UNIMPLEMENTED is final (dropped), any other error is retried.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                tracing::warn!(topic = %event.path, error = %status.message(), "the app does not implement the topic; message dropped");
                Ok(Outcome::Drop)
            }
            Err(status) => {
                tracing::debug!(error = %status.message(), "the app failed the event");
                Ok(Outcome::Retry)
            }
        }
    }

    async fn deliver_bulk(
        &self,
        batch: BulkEventDelivery<'_>,
    ) -> Result<Vec<Outcome>, Unreachable> {
        let message = bulk_request(&batch);
        let mut metadata = MetadataMap::new();
        if let Some(tp) = batch
            .traceparent
            .and_then(|t| MetadataValue::try_from(t).ok())
        {
            metadata.insert(headers::TRACEPARENT, tp);
        }
        // As daprd: the stable RPC, then the Alpha1 one for apps (the JS SDK) that only have it.
        let mut answer = self
            .client()
            .on_bulk_topic_event(self.request(message.clone(), metadata.clone()))
            .await;
        if matches!(&answer, Err(s) if s.code() == tonic::Code::Unimplemented) {
            let mut alpha = AppCallbackAlphaClient::new(self.channel.clone())
                .max_decoding_message_size(self.max_message)
                .max_encoding_message_size(self.max_message);
            #[allow(deprecated)]
            let fallback = alpha
                .on_bulk_topic_event_alpha1(self.request(message, metadata))
                .await;
            answer = fallback;
        }
        match answer {
            Ok(answer) => Ok(bulk_outcomes(&answer.into_inner(), batch.entry_ids)),
            Err(status) if never_reached(&status) => Err(Unreachable),
            // daprd: UNIMPLEMENTED is final (dropped), any other error is retried.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                tracing::warn!(path = %batch.path, "the app does not implement bulk events; batch dropped");
                Ok(vec![Outcome::Drop; batch.entry_ids.len()])
            }
            Err(status) => {
                tracing::debug!(error = %status.message(), "the app failed the batch");
                Ok(vec![Outcome::Retry; batch.entry_ids.len()])
            }
        }
    }

    async fn deliver_binding(
        &self,
        route: &str,
        data: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Bytes, String> {
        let message = binding_request(route, data, metadata);
        self.client()
            .on_binding_event(self.request(message, MetadataMap::new()))
            .await
            .map(|answer| Bytes::from(answer.into_inner().data))
            .map_err(|status| format!("the app answered {}: {}", status.code(), status.message()))
    }

    async fn probe_route(&self, route: &str) -> bool {
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            self.client()
                .list_input_bindings(self.request((), MetadataMap::new())),
        )
        .await;
        match answer {
            Ok(Ok(list)) => list.into_inner().bindings.iter().any(|b| b == route),
            Ok(Err(status)) => {
                tracing::warn!(%route, error = %status.message(), "ListInputBindings failed");
                false
            }
            Err(_) => {
                tracing::warn!(%route, "ListInputBindings timed out");
                false
            }
        }
    }

    /// `AppCallbackHealthCheck/HealthCheck` (the path is HTTP's): OK is 200, an error status
    /// daprd's HTTP status for its code.
    async fn probe_health(&self, _path: &str, timeout: Duration) -> ProbeResult {
        let mut client = AppCallbackHealthCheckClient::new(self.channel.clone());
        let call = client.health_check(self.request((), MetadataMap::new()));
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => ProbeResult::Answered(200),
            Ok(Err(status)) if never_reached(&status) => {
                ProbeResult::Failed(status.message().to_owned())
            }
            Ok(Err(status)) => ProbeResult::Answered(http_status(status.code())),
            Err(_) => ProbeResult::TimedOut,
        }
    }

    async fn proxy_grpc(&self, req: Request<Body>) -> Result<Response<Body>, AppError> {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        parts.uri = http::Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(path)
            .build()
            .map_err(|e| AppError {
                message: format!("invalid gRPC path: {e}"),
                unreachable: false,
                source: None,
            })?;
        parts.version = http::Version::HTTP_2;
        parts.headers.remove(headers::API_TOKEN);
        if let Some(token) = &self.app_token {
            parts.headers.insert(
                http::HeaderName::from_static(headers::API_TOKEN),
                token.clone(),
            );
        }
        let request = Request::from_parts(parts, tonic::body::Body::new(body));
        match tower::ServiceExt::oneshot(self.channel.clone(), request).await {
            Ok(response) => Ok(response.map(Body::new)),
            Err(e) => Err(AppError {
                message: format!("the app is unreachable: {e}"),
                unreachable: true,
                source: Some(Box::new(e)),
            }),
        }
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionJson>, String> {
        match self
            .client()
            .list_topic_subscriptions(self.request((), MetadataMap::new()))
            .await
        {
            Ok(list) => Ok(list
                .into_inner()
                .subscriptions
                .into_iter()
                .map(subscription_json)
                .collect()),
            Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
            Err(status) => Err(format!(
                "ListTopicSubscriptions failed: {} {}",
                status.code(),
                status.message()
            )),
        }
    }
}

/// A gRPC app's subscription in the shape HTTP apps answer `/dapr/subscribe` with. As in daprd,
/// a subscription with neither rules nor a default route is delivered with the empty path (the
/// SDKs then route by topic).
fn subscription_json(s: rt::TopicSubscription) -> SubscriptionJson {
    let (rules, default) = match s.routes {
        Some(r) => (
            r.rules
                .into_iter()
                .map(|rule| RuleJson {
                    match_: rule.r#match,
                    path: rule.path,
                })
                .collect::<Vec<_>>(),
            r.default,
        ),
        None => (Vec::new(), String::new()),
    };
    let routes = if rules.is_empty() && default.is_empty() {
        // An unconditional rule with the empty path (daprd's rule with no match).
        RoutesJson {
            rules: vec![RuleJson {
                match_: String::new(),
                path: String::new(),
            }],
            default: None,
        }
    } else {
        RoutesJson {
            rules,
            default: Some(default).filter(|d| !d.is_empty()),
        }
    };
    SubscriptionJson {
        pubsubname: s.pubsub_name,
        topic: s.topic,
        route: None,
        routes: Some(routes),
        metadata: Some(
            s.metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
        .filter(|m: &BTreeMap<_, _>| !m.is_empty()),
        dead_letter_topic: Some(s.dead_letter_topic).filter(|d| !d.is_empty()),
        bulk_subscribe: s.bulk_subscribe.map(|b| BulkSubscribeJson {
            enabled: b.enabled,
            max_messages_count: Some(i64::from(b.max_messages_count)),
            max_await_duration_ms: Some(i64::from(b.max_await_duration_ms)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_without_routes_take_the_empty_path_as_in_daprd() {
        let sub = subscription_json(rt::TopicSubscription {
            pubsub_name: "pubsub".into(),
            topic: "orders".into(),
            routes: Some(rt::TopicRoutes::default()),
            dead_letter_topic: "dead".into(),
            ..Default::default()
        });
        let routes = sub.routes.expect("routes");
        assert_eq!(routes.rules.len(), 1);
        assert_eq!(
            (
                routes.rules[0].match_.as_str(),
                routes.rules[0].path.as_str()
            ),
            ("", "")
        );
        assert_eq!(sub.dead_letter_topic.as_deref(), Some("dead"));
        let routed = subscription_json(rt::TopicSubscription {
            pubsub_name: "pubsub".into(),
            topic: "orders".into(),
            routes: Some(rt::TopicRoutes {
                rules: vec![rt::TopicRule {
                    r#match: "event.type == \"x\"".into(),
                    path: "x".into(),
                }],
                default: "orders".into(),
            }),
            ..Default::default()
        });
        let routes = routed.routes.expect("routes");
        assert_eq!(routes.rules.len(), 1);
        assert_eq!(routes.default.as_deref(), Some("orders"));
    }
}
