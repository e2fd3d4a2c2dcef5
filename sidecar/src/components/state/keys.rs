//! Key prefixing (`keyPrefix` metadata): how an app's key becomes the stored key, exactly as Dapr
//! does it, so data is shared with Dapr deployments of the same app.

/// The `keyPrefix` strategy of a state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPrefix {
    /// `appid||key` (the default).
    AppId,
    /// `storename||key`.
    Name,
    /// `namespace.appid||key`, or `appid||key` without a namespace.
    Namespace,
    /// The key unchanged.
    None,
    /// `custom||key`.
    Custom(String),
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input key/keyPrefix '{0}' can't contain '||'")]
pub struct KeyError(pub String);

const SEPARATOR: &str = "||";

impl KeyPrefix {
    /// Reads the `keyPrefix` metadata value (case-insensitive keywords, as Dapr).
    pub fn parse(value: Option<&str>) -> Result<Self, KeyError> {
        Ok(match value.map(str::trim) {
            None | Some("") => KeyPrefix::AppId,
            Some(v) if v.eq_ignore_ascii_case("appid") => KeyPrefix::AppId,
            Some(v) if v.eq_ignore_ascii_case("name") => KeyPrefix::Name,
            Some(v) if v.eq_ignore_ascii_case("namespace") => KeyPrefix::Namespace,
            Some(v) if v.eq_ignore_ascii_case("none") => KeyPrefix::None,
            Some(v) if v.contains(SEPARATOR) => return Err(KeyError(v.to_owned())),
            Some(v) => KeyPrefix::Custom(v.to_owned()),
        })
    }

    /// The stored key for `key`.
    pub fn apply(
        &self,
        key: &str,
        app_id: &str,
        store: &str,
        namespace: Option<&str>,
    ) -> Result<String, KeyError> {
        if key.contains(SEPARATOR) {
            return Err(KeyError(key.to_owned()));
        }
        let prefix = match self {
            KeyPrefix::None => return Ok(key.to_owned()),
            KeyPrefix::AppId if app_id.is_empty() => return Ok(key.to_owned()),
            KeyPrefix::AppId => app_id.to_owned(),
            KeyPrefix::Name => store.to_owned(),
            KeyPrefix::Namespace => match namespace.filter(|ns| !ns.is_empty()) {
                Some(ns) if !app_id.is_empty() => format!("{ns}.{app_id}"),
                _ if app_id.is_empty() => return Ok(key.to_owned()),
                _ => app_id.to_owned(),
            },
            KeyPrefix::Custom(custom) => custom.clone(),
        };
        Ok(format!("{prefix}{SEPARATOR}{key}"))
    }

    /// The app's key for a stored key: the part after the first `||`.
    pub fn original(stored: &str) -> &str {
        stored.split_once(SEPARATOR).map_or(stored, |(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_like_dapr() {
        let cases: &[(Option<&str>, &str, Option<&str>, &str)] = &[
            (None, "app", None, "app||k"),
            (Some("appid"), "", None, "k"),
            (Some("name"), "app", None, "store||k"),
            (Some("NAMESPACE"), "app", Some("prod"), "prod.app||k"),
            (Some("namespace"), "app", None, "app||k"),
            (Some("none"), "app", None, "k"),
            (Some("shared"), "app", None, "shared||k"),
        ];
        for (prefix, app, ns, want) in cases {
            let strategy = KeyPrefix::parse(*prefix).expect("valid prefix");
            assert_eq!(
                strategy.apply("k", app, "store", *ns).as_deref(),
                Ok(*want),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn refuses_separator_in_keys_and_prefixes() {
        assert!(KeyPrefix::AppId.apply("a||b", "app", "s", None).is_err());
        assert!(KeyPrefix::parse(Some("x||y")).is_err());
    }

    #[test]
    fn recovers_the_original_key() {
        assert_eq!(KeyPrefix::original("app||k||x"), "k||x");
        assert_eq!(KeyPrefix::original("plain"), "plain");
    }
}
