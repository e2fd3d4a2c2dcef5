//! The gRPC app behind the sidecars in B11: `dapr.proto.runtime.v1.AppCallback` whose `OnInvoke`
//! echoes the request's data and content type, and `AppCallbackHealthCheck`. It subscribes to no
//! topic and no binding. The load generator also calls `OnInvoke` directly (the "direct" path),
//! through an nginx `grpc_pass` hop, and through the sidecars by `dapr-app-id` proxying, so every
//! path runs the same handler.

use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use rt::app_callback_health_check_server::{AppCallbackHealthCheck, AppCallbackHealthCheckServer};
use rt::app_callback_server::{AppCallback, AppCallbackServer};
use std::net::SocketAddr;
use tonic::{Request, Response, Status};

/// The echo app.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoApp;

/// `OnInvoke`'s answer: the request's data and content type, as they came.
pub fn echo_response(req: common::InvokeRequest) -> common::InvokeResponse {
    common::InvokeResponse {
        data: req.data,
        content_type: req.content_type,
    }
}

#[tonic::async_trait]
impl AppCallback for EchoApp {
    async fn on_invoke(
        &self,
        request: Request<common::InvokeRequest>,
    ) -> Result<Response<common::InvokeResponse>, Status> {
        Ok(Response::new(echo_response(request.into_inner())))
    }

    async fn list_topic_subscriptions(
        &self,
        _request: Request<()>,
    ) -> Result<Response<rt::ListTopicSubscriptionsResponse>, Status> {
        Ok(Response::new(rt::ListTopicSubscriptionsResponse::default()))
    }

    async fn on_topic_event(
        &self,
        _request: Request<rt::TopicEventRequest>,
    ) -> Result<Response<rt::TopicEventResponse>, Status> {
        Err(Status::unimplemented(
            "the bench app subscribes to no topic",
        ))
    }

    async fn list_input_bindings(
        &self,
        _request: Request<()>,
    ) -> Result<Response<rt::ListInputBindingsResponse>, Status> {
        Ok(Response::new(rt::ListInputBindingsResponse::default()))
    }

    async fn on_binding_event(
        &self,
        _request: Request<rt::BindingEventRequest>,
    ) -> Result<Response<rt::BindingEventResponse>, Status> {
        Err(Status::unimplemented("the bench app has no input binding"))
    }

    async fn on_bulk_topic_event(
        &self,
        _request: Request<rt::TopicEventBulkRequest>,
    ) -> Result<Response<rt::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented(
            "the bench app subscribes to no topic",
        ))
    }

    async fn on_job_event(
        &self,
        _request: Request<rt::JobEventRequest>,
    ) -> Result<Response<rt::JobEventResponse>, Status> {
        Err(Status::unimplemented("the bench app schedules no job"))
    }
}

#[tonic::async_trait]
impl AppCallbackHealthCheck for EchoApp {
    async fn health_check(
        &self,
        _request: Request<()>,
    ) -> Result<Response<rt::HealthCheckResponse>, Status> {
        Ok(Response::new(rt::HealthCheckResponse::default()))
    }
}

/// Serves the echo app on `addr` (plaintext HTTP/2) until the process ends.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(AppCallbackServer::new(EchoApp))
        .add_service(AppCallbackHealthCheckServer::new(EchoApp))
        .serve(addr)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_data_and_content_type() {
        let data = prost_types::Any {
            type_url: String::new(),
            value: b"hello".to_vec(),
        };
        let got = echo_response(common::InvokeRequest {
            method: "echo".to_owned(),
            data: Some(data.clone()),
            content_type: "application/octet-stream".to_owned(),
            http_extension: None,
        });
        assert_eq!(got.data, Some(data));
        assert_eq!(got.content_type, "application/octet-stream");
    }
}
