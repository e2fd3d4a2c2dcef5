//! A component's resolved metadata (secrets already substituted), with typed readers that name
//! the field and the value when they refuse one.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a metadata value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata field {field:?} has invalid value {value:?}: {reason}")]
pub struct MetadataError {
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// Metadata fields by name; lookups ignore ASCII case, as Dapr's decoder does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    fields: BTreeMap<String, String>,
}

impl Metadata {
    pub fn new(fields: impl IntoIterator<Item = (String, String)>) -> Self {
        Metadata {
            fields: fields.into_iter().collect(),
        }
    }

    /// The raw value of a field, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A field that must be present.
    pub fn require(&self, name: &str) -> Result<&str, MetadataError> {
        self.get(name).ok_or_else(|| MetadataError {
            field: name.to_owned(),
            value: String::new(),
            reason: "required".to_owned(),
        })
    }

    fn refuse(name: &str, value: &str, reason: impl Into<String>) -> MetadataError {
        MetadataError {
            field: name.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// A boolean in Go's `strconv.ParseBool` forms (`true`, `1`, `T`, …).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, MetadataError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| Self::refuse(name, v, "expected a boolean")),
        }
    }

    /// An integer.
    pub fn int(&self, name: &str) -> Result<Option<i64>, MetadataError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|e| Self::refuse(name, v, e.to_string()))
            })
            .transpose()
    }

    /// A duration: a Go duration string (`5s`, `1m30s`, `500ms`) or a bare number of seconds.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, MetadataError> {
        self.get(name)
            .map(|v| parse_duration(v).map_err(|reason| Self::refuse(name, v, reason)))
            .transpose()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Go duration string (`1h2m3s`, `250ms`, `1.5s`) or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    // humantime reads Go's unit suffixes (h, m, s, ms, us, ns) with or without spaces.
    humantime::parse_duration(v).map_err(|e| format!("expected a duration like 5s or 1m30s ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn lookups_ignore_case_and_empty_values() {
        let m = md(&[("redisHost", "h:1"), ("empty", "")]);
        assert_eq!(m.get("REDISHOST"), Some("h:1"));
        assert_eq!(m.get("empty"), None);
        assert!(m.require("empty").is_err());
    }

    #[test]
    fn typed_readers_name_the_field_and_value() {
        let m = md(&[("b", "yes"), ("d", "1m30s"), ("n", "12"), ("bad", "soon")]);
        let err = m.bool("b", false).expect_err("yes is not a Go bool");
        assert_eq!((err.field.as_str(), err.value.as_str()), ("b", "yes"));
        assert_eq!(
            m.duration("d").ok().flatten(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            m.duration("n").ok().flatten(),
            Some(Duration::from_secs(12))
        );
        assert!(m.duration("bad").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(m.int("n"), Ok(Some(12)));
    }
}
