//! W3C trace context: a child `traceparent` for each hop.

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    crate::traces::context::write_hex(bytes, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; `None` when malformed or
/// all-zero (which the spec says to ignore).
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace, 32)
        && is_hex(parent, 16)
        && is_hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then_some((trace, flags))
}

/// A `traceparent` for the next hop: the same trace (and flags) with a new span id, or a new
/// sampled trace when the incoming one is missing or malformed.
pub fn child_traceparent(incoming: Option<&str>) -> String {
    let span = hex(&rand::random::<[u8; 8]>());
    match incoming.and_then(parse_traceparent) {
        Some((trace, flags)) => format!("00-{trace}-{span}-{flags}"),
        None => format!("00-{}-{span}-01", hex(&rand::random::<[u8; 16]>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_trace_and_makes_a_new_span() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let child = child_traceparent(Some(parent));
        assert!(child.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, parent);
        assert!(parse_traceparent(&child).is_some());
    }

    #[test]
    fn replaces_malformed_context() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        ] {
            let child = child_traceparent(Some(bad));
            assert!(parse_traceparent(&child).is_some(), "{bad:?} -> {child}");
        }
    }
}
