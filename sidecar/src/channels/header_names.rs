//! Dapr's header names as `HeaderName`s, for the per-request path. A `HeaderMap` lookup by `&str`
//! parses and validates the name first (callgrind: ~500 instructions each, a dozen per
//! invocation); these are parsed at compile time. They are statics, not `const`s: a `HeaderName`
//! holds `Bytes`, which clippy rightly will not copy into every use. The text of each is the one
//! in `tandem_crds::annotations::headers`, which a test checks.

use http::HeaderName;

pub static API_TOKEN: HeaderName = HeaderName::from_static("dapr-api-token");
pub static APP_ID: HeaderName = HeaderName::from_static("dapr-app-id");
pub static CALLER_APP_ID: HeaderName = HeaderName::from_static("dapr-caller-app-id");
pub static CALLER_NAMESPACE: HeaderName = HeaderName::from_static("dapr-caller-namespace");
pub static CALLEE_APP_ID: HeaderName = HeaderName::from_static("dapr-callee-app-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub static BAGGAGE: HeaderName = HeaderName::from_static("baggage");
/// The target app under another name; sidecar-owned, so a client may not send it.
pub static DESTINATION_APP_ID: HeaderName = HeaderName::from_static("destination-app-id");

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crds::annotations::headers as dapr;

    #[test]
    fn names_are_the_ones_dapr_uses() {
        for (constant, text) in [
            (&API_TOKEN, dapr::API_TOKEN),
            (&APP_ID, dapr::APP_ID),
            (&CALLER_APP_ID, dapr::CALLER_APP_ID),
            (&CALLER_NAMESPACE, dapr::CALLER_NAMESPACE),
            (&CALLEE_APP_ID, dapr::CALLEE_APP_ID),
            (&TRACEPARENT, dapr::TRACEPARENT),
            (&TRACESTATE, "tracestate"),
            (&BAGGAGE, "baggage"),
        ] {
            assert_eq!(constant.as_str(), text);
        }
    }
}
