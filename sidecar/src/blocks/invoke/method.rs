//! The one method normaliser (reliability rule 3): percent-decoded only to *recognise* dot
//! segments and forbidden bytes, then the cleaned, still-encoded path is what is dispatched.

/// Cleans an invoked method path: resolves `.` and `..` segments (also percent-encoded ones)
/// without climbing above the root, drops empty segments, and refuses control bytes, NUL, `#`,
/// `?` and encoded `/`. Returns the method without a leading `/`.
pub fn normalize_method(raw: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for segment in raw.split('/') {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
        if decoded
            .iter()
            .any(|b| *b < 0x20 || *b == 0x7f || matches!(*b, b'#' | b'?' | b'/' | b'\\'))
        {
            return Err(format!("method {raw:?} contains a forbidden character"));
        }
        match decoded.as_slice() {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(segment),
        }
    }
    Ok(out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_refuses() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("hello", Ok("hello")),
            ("a/b/c", Ok("a/b/c")),
            ("a//b/", Ok("a/b")),
            ("a/./b", Ok("a/b")),
            ("a/../b", Ok("b")),
            ("../../etc/passwd", Ok("etc/passwd")),
            ("a/%2e%2e/b", Ok("b")),
            ("a/%2E./b", Ok("b")),
            ("a%2F..%2Fb", Err(())),
            ("a%23b", Err(())),
            ("a%3Fb", Err(())),
            ("a%0Db", Err(())),
            ("a%00b", Err(())),
            ("a%5cb", Err(())),
            ("caf%C3%A9", Ok("caf%C3%A9")),
        ];
        for (raw, want) in cases {
            let got = normalize_method(raw);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{raw}"),
                Err(()) => assert!(got.is_err(), "{raw} must be refused, got {got:?}"),
            }
        }
    }
}
