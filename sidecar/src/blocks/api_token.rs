//! The `DAPR_API_TOKEN` rule, once for every front end: when the sidecar has a token, a call
//! must present exactly it (compared in constant time). The front ends only say where the token
//! sits (a header, call metadata) and which paths Dapr exempts.

use super::Sidecar;
use super::error::{BlockError, Code};
use subtle::ConstantTimeEq;

/// Why a call's token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Mismatch,
}

impl Refusal {
    /// The error, in daprd's words for each case.
    pub fn error(self) -> BlockError {
        let message = match self {
            Refusal::Missing => "missing api token in request metadata",
            Refusal::Mismatch => "authentication error: api token mismatch",
        };
        BlockError::new(Code::Unauthorized, message)
    }
}

/// `Ok` when a call presenting `presented` may pass a sidecar expecting `expected`.
pub fn check(expected: Option<&str>, presented: Option<&[u8]>) -> Result<(), Refusal> {
    let Some(expected) = expected else {
        return Ok(());
    };
    match presented {
        None => Err(Refusal::Missing),
        Some(token) if bool::from(token.ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(Refusal::Mismatch),
    }
}

impl Sidecar {
    /// Whether a call presenting `presented` may use this sidecar's API.
    pub fn check_api_token(&self, presented: Option<&[u8]>) -> Result<(), Refusal> {
        check(self.api_token(), presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_required_only_when_configured() {
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(None, Some(b"anything")), Ok(()));
        assert_eq!(check(Some("secret"), Some(b"secret")), Ok(()));
        assert_eq!(check(Some("secret"), None), Err(Refusal::Missing));
        for wrong in [&b"secreT"[..], b"secre", b"", b"secret2"] {
            assert_eq!(
                check(Some("secret"), Some(wrong)),
                Err(Refusal::Mismatch),
                "{wrong:?}"
            );
        }
    }
}
