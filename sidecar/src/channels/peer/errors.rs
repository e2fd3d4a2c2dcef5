//! What a failed call to a peer sidecar means: whether the peer certainly did not process the
//! request (so it may be sent again, to another address), and a message naming the whole cause.

use std::error::Error;

/// True when the request never reached the peer's handler: hyper cancelled it before sending (a
/// pooled connection closing under it), the peer refused the stream (`REFUSED_STREAM`), or the
/// peer's GOAWAY came before it (an HTTP/2 stream above the GOAWAY's last stream id is never
/// processed, RFC 9113 §6.8) — a sidecar shutting down gracefully does exactly that.
pub fn unprocessed(err: &(dyn Error + 'static)) -> bool {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(hyper) = current.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            return true;
        }
        if let Some(h2) = current.downcast_ref::<h2::Error>()
            && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM))
        {
            return true;
        }
        cause = current.source();
    }
    false
}

/// `err` and each of its causes, `: `-separated (hyper-util's errors say only their kind).
pub fn describe(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(current) = cause {
        let more = current.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = current.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error caused by another, as the client's errors wrap hyper's and h2's.
    #[derive(Debug)]
    struct Wrapped(Box<dyn Error + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (SendRequest)")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn a_refused_stream_anywhere_in_the_chain_was_not_processed() {
        let refused = Wrapped(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(unprocessed(&refused));
        let reset = Wrapped(Box::new(h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        assert!(
            !unprocessed(&reset),
            "a reset stream may have been processed"
        );
        let io = Wrapped(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(!unprocessed(&io));
    }

    #[test]
    fn the_description_names_every_cause_once() {
        let err = Wrapped(Box::new(std::io::Error::other("connection reset by peer")));
        assert_eq!(
            describe(&err),
            "client error (SendRequest): connection reset by peer"
        );
    }
}
