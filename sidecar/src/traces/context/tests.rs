use super::*;

const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).expect("ascii"));
    }
    h
}

#[test]
fn w3c_context_round_trips_with_tracestate() {
    let cx = extract_http(&headers(&[
        ("traceparent", PARENT),
        ("tracestate", "vendor=abc"),
    ]));
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
    assert_eq!(
        sc.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    let mut out = HeaderMap::new();
    inject_http(&cx, &mut out);
    assert_eq!(out["traceparent"], PARENT);
    assert_eq!(out["tracestate"], "vendor=abc");
}

#[test]
fn malformed_context_is_ignored() {
    for bad in [
        "",
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-zz-zz-zz",
    ] {
        let cx = extract_http(&headers(&[("traceparent", bad)]));
        assert!(!cx.span().span_context().is_valid(), "{bad:?}");
        let mut out = HeaderMap::new();
        inject_http(&cx, &mut out);
        assert!(out.is_empty(), "nothing to propagate from {bad:?}");
    }
}

#[test]
fn grpc_trace_bin_round_trips_and_wins_over_traceparent() {
    let sc = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
        SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let bin = encode_grpc_trace_bin(&sc);
    assert_eq!(decode_grpc_trace_bin(bin.as_bytes()), Some(sc.clone()));
    assert_eq!(
        decode_grpc_trace_bin(format!("{bin}=").as_bytes()),
        Some(sc.clone()),
        "padded"
    );
    let cx = extract_grpc(&headers(&[
        ("grpc-trace-bin", &bin),
        ("traceparent", PARENT),
    ]));
    assert_eq!(cx.span().span_context().trace_id(), sc.trace_id());
    let cx = extract_grpc(&headers(&[
        ("grpc-trace-bin", "AAAA"),
        ("traceparent", PARENT),
    ]));
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c",
        "a bad grpc-trace-bin falls back to traceparent"
    );
    let mut out = HeaderMap::new();
    inject_grpc(&cx, &mut out);
    let back = decode_grpc_trace_bin(out["grpc-trace-bin"].as_bytes()).expect("written");
    assert_eq!(back.span_id().to_string(), "b7ad6b7169203331");
}

#[test]
fn traceparent_text_for_cloud_events() {
    let cx = from_traceparent(Some(PARENT), Some("k=v"));
    assert_eq!(
        traceparent(&cx),
        Some((PARENT.to_owned(), Some("k=v".to_owned())))
    );
    assert_eq!(traceparent(&from_traceparent(None, None)), None);
}

#[test]
fn traceparent_text_is_what_the_propagator_writes() {
    for (parent, state) in [
        (PARENT, Some("k=v,other=1")),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            None,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            None,
        ),
    ] {
        let cx = from_traceparent(Some(parent), state);
        let mut out = HeaderMap::new();
        inject_http(&cx, &mut out);
        let text = |name: &str| out.get(name).map(|v| v.to_str().expect("ascii").to_owned());
        let (tp, ts) = traceparent(&cx).expect("a valid context");
        assert_eq!(Some(tp), text("traceparent"), "{parent}");
        assert_eq!(ts, text("tracestate"), "{parent}");
    }
}

/// What the W3C propagator writes, for comparison with [`inject_http`].
struct PropagatorOut(HeaderMap);

impl opentelemetry::propagation::Injector for PropagatorOut {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[test]
fn injects_the_text_the_w3c_propagator_writes() {
    let states = [
        TraceState::default(),
        TraceState::from_key_value([("vendor", "abc"), ("other", "x-1")]).expect("valid"),
    ];
    for (flags, state) in [0x00u8, 0x01, 0x03, 0xff]
        .into_iter()
        .flat_map(|f| states.iter().map(move |s| (f, s)))
    {
        let sc = SpanContext::new(
            TraceId::from_bytes(rand::random()),
            SpanId::from_bytes(rand::random()),
            TraceFlags::new(flags),
            true,
            state.clone(),
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut expected = PropagatorOut(HeaderMap::new());
        TraceContextPropagator::new().inject_context(&cx, &mut expected);
        let mut ours = headers(&[("tracestate", "stale=1")]);
        inject_http(&cx, &mut ours);
        assert_eq!(ours, expected.0, "flags {flags:#x}, state {state:?}");
        let (traceparent, tracestate) = traceparent(&cx).expect("valid");
        assert_eq!(expected.0["traceparent"], traceparent);
        assert_eq!(expected.0["tracestate"], tracestate.unwrap_or_default());
    }
}
