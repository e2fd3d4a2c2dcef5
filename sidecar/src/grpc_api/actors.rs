//! The actor RPCs over [`crate::actors`], mapped as daprd maps them. Calls that run on the
//! actor's host (`InvokeActor`, reminder registration, timers) become the HTTP actor API's
//! request — the form a call forwarded to another host travels in — and go through
//! [`operations`]; reads and deletes call the blocks directly. Bytes given as timer or reminder
//! `data` are kept as daprd keeps them: the JSON string of their base64 form, which is what the
//! app's callback receives and what the SDKs decode.

use super::Shared;
use crate::actors::calls::ActorRequest;
use crate::actors::operations;
use crate::actors::reminders::{self, ReminderRecord};
use crate::actors::state::{self as actor_state, ActorStateWrite};
use crate::actors::table::ActorRef;
use crate::blocks::error::{BlockError, Code};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use dapr::dapr::proto::runtime::v1 as rt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::collections::HashMap;
use tonic::{Request, Response, Status};

type Rpc<T> = Result<Response<T>, Status>;

/// daprd's reply header for an actor method's own error.
const ERROR_RESPONSE: &str = "x-daprerrorresponseheader";

/// `/v1.0/actors/{type}/{id}/{rest}` with the type and id escaped.
fn actor_path(actor: &ActorRef, rest: &str) -> String {
    format!(
        "/v1.0/actors/{}/{}/{rest}",
        utf8_percent_encode(&actor.actor_type, NON_ALPHANUMERIC),
        utf8_percent_encode(&actor.actor_id, NON_ALPHANUMERIC)
    )
}

fn segment(name: &str) -> String {
    utf8_percent_encode(name, NON_ALPHANUMERIC).to_string()
}

/// A JSON request to the HTTP actor API.
fn json_request(path: String, body: &Value) -> ActorRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    ActorRequest {
        method: Method::PUT,
        path_and_query: path,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

/// Timer or reminder `data` as daprd keeps gRPC bytes: the base64 text as a JSON string.
fn data_value(data: &[u8]) -> Value {
    if data.is_empty() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(data))
    }
}

/// The answer of an actor call, read whole. A failure answered by the host that ran the call
/// (Dapr's JSON error) becomes that error again; an actor method's own error (the app set
/// `X-DaprErrorResponseHeader`) is an answer, as daprd gives it.
async fn answer(response: http::Response<Body>) -> Result<Bytes, BlockError> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| {
            BlockError::new(
                Code::ActorInvokeMethod,
                format!("error reading the actor's answer: {e}"),
            )
        })?
        .to_bytes();
    if parts.status.is_success() || parts.headers.contains_key(ERROR_RESPONSE) {
        return Ok(body);
    }
    Err(forwarded_error(parts.status, &body))
}

/// Dapr's JSON error from another host, as the error it names.
fn forwarded_error(status: StatusCode, body: &[u8]) -> BlockError {
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            Some((
                v.get("errorCode")?.as_str()?.to_owned(),
                v.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        });
    match parsed {
        Some((code, message)) => match Code::from_dapr(&code, status.as_u16()) {
            Some(code) => BlockError::new(code, message),
            None => BlockError::new(Code::ActorInvokeMethod, format!("{code}: {message}")),
        },
        None => BlockError::new(
            Code::ActorInvokeMethod,
            format!(
                "error from actor service: status {} {}",
                status.as_u16(),
                String::from_utf8_lossy(body)
            ),
        ),
    }
}

pub async fn invoke(
    sc: &Shared,
    request: Request<rt::InvokeActorRequest>,
) -> Rpc<rt::InvokeActorResponse> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in &req.metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let request = ActorRequest {
        method: Method::PUT,
        path_and_query: actor_path(&actor, &format!("method/{}", segment(&req.method))),
        headers,
        body: Bytes::from(req.data),
    };
    let response = operations::invoke_method(sc, &actor, &req.method, request).await?;
    let data = answer(response).await?;
    Ok(Response::new(rt::InvokeActorResponse {
        data: data.to_vec(),
    }))
}

pub async fn get_state(
    sc: &Shared,
    request: Request<rt::GetActorStateRequest>,
) -> Rpc<rt::GetActorStateResponse> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    let item = actor_state::get(sc, &actor, &req.key).await?;
    Ok(Response::new(rt::GetActorStateResponse {
        data: item.map(|i| i.data.to_vec()).unwrap_or_default(),
        metadata: HashMap::new(),
    }))
}

pub async fn transaction(
    sc: &Shared,
    request: Request<rt::ExecuteActorStateTransactionRequest>,
) -> Rpc<()> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    let writes = req
        .operations
        .into_iter()
        .map(|op| ActorStateWrite {
            operation: op.operation_type,
            key: op.key,
            value: op.value.map(|v| Bytes::from(v.value)).unwrap_or_default(),
            metadata: op.metadata.into_iter().collect(),
        })
        .collect();
    actor_state::transact(sc, &actor, writes).await?;
    Ok(Response::new(()))
}

pub async fn register_timer(
    sc: &Shared,
    request: Request<rt::RegisterActorTimerRequest>,
) -> Rpc<()> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    let body = json!({
        "dueTime": req.due_time, "period": req.period, "ttl": req.ttl,
        "callback": req.callback, "data": data_value(&req.data),
    });
    let path = actor_path(&actor, &format!("timers/{}", segment(&req.name)));
    let response =
        operations::create_timer(sc, &actor, &req.name, json_request(path, &body)).await?;
    answer(response).await?;
    Ok(Response::new(()))
}

pub async fn unregister_timer(
    sc: &Shared,
    request: Request<rt::UnregisterActorTimerRequest>,
) -> Rpc<()> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    let path = actor_path(&actor, &format!("timers/{}", segment(&req.name)));
    let mut request = json_request(path, &Value::Null);
    request.method = Method::DELETE;
    request.body = Bytes::new();
    let response = operations::delete_timer(sc, &actor, &req.name, request).await?;
    answer(response).await?;
    Ok(Response::new(()))
}

pub async fn register_reminder(
    sc: &Shared,
    request: Request<rt::RegisterActorReminderRequest>,
) -> Rpc<()> {
    let req = request.into_inner();
    let actor = ActorRef::new(&req.actor_type, &req.actor_id);
    if req.name.is_empty() {
        return Err(BlockError::new(Code::ActorBadRequest, "reminder name cannot be empty").into());
    }
    let mut body = json!({
        "dueTime": req.due_time, "period": req.period, "ttl": req.ttl,
        "data": data_value(&req.data),
    });
    if let Some(overwrite) = req.overwrite {
        body["overwrite"] = Value::Bool(overwrite);
    }
    let path = actor_path(&actor, &format!("reminders/{}", segment(&req.name)));
    let response =
        operations::create_reminder(sc, &actor, &req.name, json_request(path, &body)).await?;
    answer(response).await?;
    Ok(Response::new(()))
}

pub async fn unregister_reminder(
    sc: &Shared,
    request: Request<rt::UnregisterActorReminderRequest>,
) -> Rpc<()> {
    let req = request.into_inner();
    reminders::delete(
        sc,
        &ActorRef::new(&req.actor_type, &req.actor_id),
        &req.name,
    )
    .await?;
    Ok(Response::new(()))
}

/// A reminder's `data` as daprd answers it: its JSON text in a `BytesValue`.
fn data_any(record: &ReminderRecord) -> Option<prost_types::Any> {
    let data = record.data.as_ref().filter(|d| !d.is_null())?;
    prost_types::Any::from_msg(&data.to_string().into_bytes()).ok()
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

pub async fn get_reminder(
    sc: &Shared,
    request: Request<rt::GetActorReminderRequest>,
) -> Rpc<rt::GetActorReminderResponse> {
    let req = request.into_inner();
    let record = reminders::get(
        sc,
        &ActorRef::new(&req.actor_type, &req.actor_id),
        &req.name,
    )
    .await?;
    Ok(Response::new(rt::GetActorReminderResponse {
        actor_type: record.actor_type.clone(),
        actor_id: record.actor_id.clone(),
        due_time: non_empty(&record.due_time),
        period: non_empty(&record.period),
        data: data_any(&record),
        ttl: non_empty(&record.ttl),
    }))
}

pub async fn list_reminders(
    sc: &Shared,
    request: Request<rt::ListActorRemindersRequest>,
) -> Rpc<rt::ListActorRemindersResponse> {
    let req = request.into_inner();
    let records = reminders::list(sc, &req.actor_type, req.actor_id.as_deref()).await?;
    let reminders = records
        .into_iter()
        .map(|(_, record)| rt::NamedActorReminder {
            name: record.name.clone(),
            reminder: Some(rt::ActorReminder {
                actor_type: record.actor_type.clone(),
                actor_id: record.actor_id.clone(),
                due_time: non_empty(&record.due_time),
                period: non_empty(&record.period),
                data: data_any(&record),
                ttl: non_empty(&record.ttl),
            }),
        })
        .collect();
    Ok(Response::new(rt::ListActorRemindersResponse { reminders }))
}

pub async fn unregister_reminders_by_type(
    sc: &Shared,
    request: Request<rt::UnregisterActorRemindersByTypeRequest>,
) -> Rpc<rt::UnregisterActorRemindersByTypeResponse> {
    let req = request.into_inner();
    reminders::delete_all(sc, &req.actor_type, req.actor_id.as_deref()).await?;
    Ok(Response::new(rt::UnregisterActorRemindersByTypeResponse {}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_from_another_host_is_that_error_again() {
        let e = forwarded_error(
            StatusCode::CONFLICT,
            br#"{"errorCode":"ERR_ACTOR_REMINDER_ALREADY_EXISTS","message":"reminder r already exists"}"#,
        );
        assert_eq!(e.code, Code::ActorReminderAlreadyExists);
        assert_eq!(e.message, "reminder r already exists");
        let e = forwarded_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(e.code, Code::ActorInvokeMethod);
        assert!(e.message.contains("502"), "{}", e.message);
    }

    #[test]
    fn grpc_bytes_become_daprs_base64_json_string() {
        assert_eq!(data_value(b""), Value::Null);
        assert_eq!(data_value(b"hi"), Value::String("aGk=".into()));
        let path = actor_path(&ActorRef::new("Cat", "a b"), "timers/t%1");
        assert_eq!(path, "/v1.0/actors/Cat/a%20b/timers/t%1");
    }
}
