//! The echo app: HTTP/1.1 keep-alive, answers every request with 200 and the request body.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let content_type = req.headers().get(http::header::CONTENT_TYPE).cloned();
    let response = match req.into_body().collect().await {
        Ok(body) => {
            let mut response = Response::new(Full::new(body.to_bytes()));
            if let Some(ct) = content_type {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"bad body\n")));
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            response
        }
    };
    Ok(response)
}

/// Serves the echo app on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("bench-echo: accept: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn echoes_the_body_on_a_kept_alive_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        for body in ["hello", "again"] {
            let req = format!(
                "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(req.as_bytes()).await.expect("write");
            let mut buf = vec![0u8; 4096];
            let mut got = String::new();
            while !got.ends_with(body) {
                let n = conn.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed early: {got:?}");
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        }
    }
}
