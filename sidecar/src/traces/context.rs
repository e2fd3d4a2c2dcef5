//! The trace context on the wire: W3C `traceparent`/`tracestate` (and `baggage`) through
//! opentelemetry's propagators, and gRPC's binary `grpc-trace-bin` (OpenCensus' 29-byte format:
//! `0, 0, trace id (16), 1, span id (8), 2, flags`), which gRPC callers send and daprd reads first.

use crate::channels::header_names as names;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

pub const GRPC_TRACE_BIN: &str = "grpc-trace-bin";

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // The propagators ask for these three on every request: no parse of the name.
        let value = match key {
            "traceparent" => self.0.get(&names::TRACEPARENT),
            "tracestate" => self.0.get(&names::TRACESTATE),
            "baggage" => self.0.get(&names::BAGGAGE),
            other => self.0.get(other),
        };
        value.and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The caller's context from HTTP headers (`traceparent`, `tracestate`, `baggage`); an empty
/// context when absent or malformed.
pub fn extract_http(headers: &HeaderMap) -> Context {
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    BaggagePropagator::new().extract_with_context(&cx, &Headers(headers))
}

/// The caller's context from gRPC metadata: `grpc-trace-bin` first, then the W3C headers.
pub fn extract_grpc(headers: &HeaderMap) -> Context {
    let w3c = extract_http(headers);
    match headers
        .get(GRPC_TRACE_BIN)
        .and_then(|v| decode_grpc_trace_bin(v.as_bytes()))
    {
        Some(sc) => w3c.with_remote_span_context(sc),
        None => w3c,
    }
}

/// Writes `cx`'s span as `traceparent` and `tracestate` (replacing what was there), the text
/// opentelemetry's W3C propagator writes, formatted here without it: the propagator's
/// `format!` and `Injector` cost each hop ~8 000 instructions (callgrind) and this runs up to
/// three times per invocation. Baggage is not written: it travels in the request's own
/// headers, as the app sent it.
pub fn inject_http(cx: &Context, headers: &mut HeaderMap) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let traceparent = HeaderValue::from_bytes(&traceparent_bytes(sc));
    if let Ok(value) = traceparent {
        headers.insert(names::TRACEPARENT.clone(), value);
    }
    match HeaderValue::from_str(&sc.trace_state().header()) {
        Ok(value) => {
            headers.insert(names::TRACESTATE.clone(), value);
        }
        Err(_) => {
            headers.remove(&names::TRACESTATE);
        }
    }
}

/// `00-<trace id>-<span id>-<flags>` in lower-case hex, as the W3C propagator writes it (only
/// the sampled flag is kept).
fn traceparent_bytes(sc: &SpanContext) -> [u8; 55] {
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    write_hex(&sc.trace_id().to_bytes(), &mut out[3..35]);
    write_hex(&sc.span_id().to_bytes(), &mut out[36..52]);
    write_hex(
        &[(sc.trace_flags() & TraceFlags::SAMPLED).to_u8()],
        &mut out[53..55],
    );
    out
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
}

/// [`inject_http`] plus `grpc-trace-bin`, for gRPC calls.
pub fn inject_grpc(cx: &Context, headers: &mut HeaderMap) {
    inject_http(cx, headers);
    let sc = cx.span().span_context().clone();
    if sc.is_valid()
        && let Ok(v) = HeaderValue::from_str(&encode_grpc_trace_bin(&sc))
    {
        headers.insert(HeaderName::from_static(GRPC_TRACE_BIN), v);
    }
}

/// The `traceparent` of `cx`'s span, for carriers that are not headers (a CloudEvent, binding
/// metadata).
///
/// Written as the W3C propagator writes them ([`inject_http`]), without a header map in between:
/// that cost a publish and a delivery 13 000 instructions each (callgrind).
pub fn traceparent(cx: &Context) -> Option<(String, Option<String>)> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let traceparent = String::from_utf8_lossy(&traceparent_bytes(sc)).into_owned();
    Some((traceparent, Some(sc.trace_state().header())))
}

/// The context a `traceparent`/`tracestate` pair names (a CloudEvent's).
pub fn from_traceparent(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (&names::TRACEPARENT, traceparent),
        (&names::TRACESTATE, tracestate),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name.clone(), v);
        }
    }
    extract_http(&headers)
}

/// Decodes `grpc-trace-bin` as it arrives in HTTP/2 (base64, padded or not).
pub fn decode_grpc_trace_bin(value: &[u8]) -> Option<SpanContext> {
    let text = std::str::from_utf8(value)
        .ok()?
        .trim()
        .trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .ok()?;
    if bytes.len() < 29 || bytes[0] != 0 || bytes[1] != 0 || bytes[18] != 1 || bytes[27] != 2 {
        return None;
    }
    let trace = TraceId::from_bytes(bytes[2..18].try_into().ok()?);
    let span = SpanId::from_bytes(bytes[19..27].try_into().ok()?);
    let flags = TraceFlags::new(bytes[28] & 1);
    let sc = SpanContext::new(trace, span, flags, true, TraceState::default());
    sc.is_valid().then_some(sc)
}

/// Encodes `sc` as `grpc-trace-bin` (base64, as binary metadata travels in HTTP/2).
pub fn encode_grpc_trace_bin(sc: &SpanContext) -> String {
    let mut bytes = Vec::with_capacity(29);
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&sc.trace_id().to_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&sc.span_id().to_bytes());
    bytes.extend_from_slice(&[2, sc.trace_flags().to_u8()]);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
