//! What one request of a B11 run is: a connection per load-generator worker and the call it
//! repeats, each answer checked (an echo must carry the body back, a state read must find data).
//!
//! - [`Kind::Echo`]: `AppCallback/OnInvoke` on the echo app; with an app id, the call carries
//!   `dapr-app-id` and goes to a sidecar's gRPC port, which proxies it (Dapr's gRPC proxying).
//! - [`Kind::InvokeService`]: `Dapr/InvokeService` on a sidecar, method `echo`.
//! - [`Kind::GetState`]: `Dapr/GetState` on a sidecar.
//! - [`Kind::HttpPost`], [`Kind::HttpGet`]: the HTTP equivalents, one HTTP/1.1 keep-alive
//!   connection per worker.

use anyhow::{Context, bail};
use bytes::Bytes;
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use http_body_util::{BodyExt, Full};
use rt::app_callback_client::AppCallbackClient;
use rt::dapr_client::DaprClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

/// The metadata key naming the target app of a proxied gRPC call.
pub const APP_ID_METADATA: &str = "dapr-app-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Echo,
    InvokeService,
    GetState,
    HttpPost,
    HttpGet,
}

/// Where and what to call.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    /// `host:port` for the gRPC kinds, a URL for the HTTP ones.
    pub address: String,
    /// `dapr-app-id` for [`Kind::Echo`], the `id` of [`Kind::InvokeService`].
    pub app_id: Option<String>,
    pub store: String,
    pub key: String,
    /// The request body (echo, invoke, HTTP POST).
    pub body: Bytes,
}

/// One worker's connection.
pub enum Conn {
    Echo {
        client: AppCallbackClient<Channel>,
        app_id: Option<AsciiMetadataValue>,
        request: common::InvokeRequest,
    },
    Invoke {
        client: DaprClient<Channel>,
        request: rt::InvokeServiceRequest,
    },
    GetState {
        client: DaprClient<Channel>,
        request: rt::GetStateRequest,
    },
    Http {
        sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        method: http::Method,
        uri: http::Uri,
        host: String,
        body: Bytes,
    },
}

fn echo_request(body: &Bytes) -> common::InvokeRequest {
    common::InvokeRequest {
        method: "echo".to_owned(),
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: body.to_vec(),
        }),
        content_type: "application/octet-stream".to_owned(),
        http_extension: None,
    }
}

/// The body an echo answer must carry: the data's bytes.
fn echoed_len(response: &common::InvokeResponse) -> usize {
    response.data.as_ref().map_or(0, |d| d.value.len())
}

/// A gRPC status as an error that names its code (`Unimplemented: …`).
fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("gRPC {:?}: {}", s.code(), s.message())
}

async fn channel(address: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(format!("http://{address}"))
        .context("bad gRPC address")?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {address}"))
}

impl Conn {
    /// Opens one connection to the target.
    pub async fn connect(t: &Target) -> anyhow::Result<Conn> {
        Ok(match t.kind {
            Kind::Echo => Conn::Echo {
                client: AppCallbackClient::new(channel(&t.address).await?),
                app_id: t
                    .app_id
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .context("the app id is not valid metadata")?,
                request: echo_request(&t.body),
            },
            Kind::InvokeService => Conn::Invoke {
                client: DaprClient::new(channel(&t.address).await?),
                request: rt::InvokeServiceRequest {
                    id: t.app_id.clone().context("InvokeService needs --app-id")?,
                    message: Some(echo_request(&t.body)),
                },
            },
            Kind::GetState => Conn::GetState {
                client: DaprClient::new(channel(&t.address).await?),
                request: rt::GetStateRequest {
                    store_name: t.store.clone(),
                    key: t.key.clone(),
                    ..Default::default()
                },
            },
            Kind::HttpPost | Kind::HttpGet => {
                let uri: http::Uri = t.address.parse().context("bad URL")?;
                let host = uri
                    .authority()
                    .context("the URL has no host:port")?
                    .to_string();
                let stream = tokio::net::TcpStream::connect(&host)
                    .await
                    .with_context(|| format!("connecting to {host}"))?;
                stream.set_nodelay(true)?;
                let io = hyper_util::rt::TokioIo::new(stream);
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(conn);
                let method = if t.kind == Kind::HttpPost {
                    http::Method::POST
                } else {
                    http::Method::GET
                };
                Conn::Http {
                    sender,
                    method,
                    uri,
                    host,
                    body: if t.kind == Kind::HttpPost {
                        t.body.clone()
                    } else {
                        Bytes::new()
                    },
                }
            }
        })
    }

    /// One request; an error when it fails or its answer is not what the call expects.
    pub async fn call(&mut self) -> anyhow::Result<()> {
        match self {
            Conn::Echo {
                client,
                app_id,
                request,
            } => {
                let want = request.data.as_ref().map_or(0, |d| d.value.len());
                let mut req = tonic::Request::new(request.clone());
                if let Some(id) = app_id {
                    req.metadata_mut().insert(APP_ID_METADATA, id.clone());
                }
                let got = echoed_len(client.on_invoke(req).await.map_err(status)?.get_ref());
                if got != want {
                    bail!("OnInvoke echoed {got} bytes of {want}");
                }
            }
            Conn::Invoke { client, request } => {
                let want = request
                    .message
                    .as_ref()
                    .and_then(|m| m.data.as_ref())
                    .map_or(0, |d| d.value.len());
                let got = echoed_len(
                    client
                        .invoke_service(request.clone())
                        .await
                        .map_err(status)?
                        .get_ref(),
                );
                if got != want {
                    bail!("InvokeService echoed {got} bytes of {want}");
                }
            }
            Conn::GetState { client, request } => {
                let got = client
                    .get_state(request.clone())
                    .await
                    .map_err(status)?
                    .into_inner();
                if got.data.is_empty() {
                    bail!("GetState found no data for key {:?}", request.key);
                }
            }
            Conn::Http {
                sender,
                method,
                uri,
                host,
                body,
            } => {
                let mut req = http::Request::builder()
                    .method(method.clone())
                    .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                    .header(http::header::HOST, host.as_str());
                if !body.is_empty() {
                    req = req.header(http::header::CONTENT_TYPE, "application/octet-stream");
                }
                sender.ready().await?;
                let resp = sender
                    .send_request(req.body(Full::new(body.clone()))?)
                    .await?;
                let status = resp.status();
                let got = resp.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    bail!("HTTP {status}: {}", String::from_utf8_lossy(&got));
                }
                if !body.is_empty() && got.len() != body.len() {
                    bail!("the echo carried {} bytes of {}", got.len(), body.len());
                }
                if got.is_empty() {
                    bail!("HTTP {status} with an empty body");
                }
            }
        }
        Ok(())
    }
}
