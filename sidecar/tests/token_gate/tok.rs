//! Token variants: how a client might present (or fake) the API token.

/// Token variants; `valid()` ones must be accepted, every other one refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tok {
    None,
    Empty,
    Wrong,
    OneByteOff,
    Prefix,
    Extended,
    OtherSidecars,
    UpperNameWrong,
    InQuery,
    Bearer,
    WrongThenRight,
    UnderscoreName,
    // Valid: HTTP header names are case-insensitive.
    RightUpperName,
    RightMixedName,
}

pub const INVALID_TOKS: &[Tok] = &[
    Tok::None,
    Tok::Empty,
    Tok::Wrong,
    Tok::OneByteOff,
    Tok::Prefix,
    Tok::Extended,
    Tok::OtherSidecars,
    Tok::UpperNameWrong,
    Tok::InQuery,
    Tok::Bearer,
    Tok::WrongThenRight,
    Tok::UnderscoreName,
];

impl Tok {
    pub fn valid(self) -> bool {
        matches!(self, Tok::RightUpperName | Tok::RightMixedName)
    }

    /// The headers, and the target (possibly with the token in the query).
    pub fn apply(
        self,
        target: &str,
        right: &str,
        other: &str,
        n: usize,
    ) -> (Vec<(String, String)>, String) {
        let h = |name: &str, value: String| (name.to_owned(), value);
        let headers = match self {
            Tok::None | Tok::InQuery => vec![],
            Tok::Empty => vec![h("dapr-api-token", String::new())],
            Tok::Wrong => vec![h("dapr-api-token", "nope".into())],
            Tok::OneByteOff => {
                let mut bytes = right.as_bytes().to_vec();
                let i = n % bytes.len();
                bytes[i] ^= 1;
                vec![h(
                    "dapr-api-token",
                    String::from_utf8(bytes).expect("ascii"),
                )]
            }
            Tok::Prefix => vec![h("dapr-api-token", right[..right.len() - 1].to_owned())],
            Tok::Extended => vec![h("dapr-api-token", format!("{right}{right}"))],
            Tok::OtherSidecars => vec![h("dapr-api-token", other.to_owned())],
            Tok::UpperNameWrong => vec![h("DAPR-API-TOKEN", "nope".into())],
            Tok::Bearer => vec![h("Authorization", format!("Bearer {right}"))],
            Tok::WrongThenRight => vec![
                h("dapr-api-token", "nope".into()),
                h("dapr-api-token", right.to_owned()),
            ],
            Tok::UnderscoreName => vec![h("dapr_api_token", right.to_owned())],
            Tok::RightUpperName => vec![h("DAPR-API-TOKEN", right.to_owned())],
            Tok::RightMixedName => vec![h("Dapr-Api-Token", right.to_owned())],
        };
        let target = if self == Tok::InQuery {
            let sep = if target.contains('?') { '&' } else { '?' };
            format!("{target}{sep}dapr-api-token={right}&token={right}")
        } else {
            target.to_owned()
        };
        (headers, target)
    }
}
