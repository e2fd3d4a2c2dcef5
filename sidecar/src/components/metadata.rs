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

    /// A byte size: a plain number of bytes or a Kubernetes quantity (`100Mi`, `1Gi`, `512k`),
    /// as Dapr's `ByteSize` reads it. Zero or less means "no limit" to Dapr, so `None` then.
    pub fn byte_size(&self, name: &str) -> Result<Option<u64>, MetadataError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_byte_size(v).map_err(|reason| Self::refuse(name, v, reason)),
        }
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

/// Dapr's `IsTruthy` (`true`, `yes`, `on`, `1`, … in any case): anything else is false. Some
/// settings (`errorIfNot2XX`) are read this way rather than with [`parse_bool`].
pub fn is_truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "t" | "on" | "1"
    )
}

/// A Kubernetes quantity as a number of bytes, rounded up; `None` for zero or less.
pub fn parse_byte_size(v: &str) -> Result<Option<u64>, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let (number, suffix) = v.split_at(split);
    let scale: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            return Err(format!(
                "unknown unit {suffix:?} (expected k, M, G, Ki, Mi, Gi, …)"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a size like 100Mi, 1Gi, 512k or a number of bytes".to_owned())?;
    let bytes = (number * scale).ceil();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("too large".to_owned());
    }
    // In range (checked above), so the cast neither truncates nor wraps.
    Ok((bytes > 0.0).then_some(bytes as u64))
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

    #[test]
    fn byte_sizes_read_kubernetes_quantities() {
        let cases: &[(&str, Option<u64>)] = &[
            ("100Mi", Some(100 << 20)),
            ("1Gi", Some(1 << 30)),
            ("512k", Some(512_000)),
            ("1.5Ki", Some(1536)),
            ("2048", Some(2048)),
            ("0", None),
            ("-1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_byte_size(text), Ok(*want), "{text}");
        }
        for bad in ["", "10XB", "Mi", "1..2Mi", "1e400"] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
        let err = md(&[("max", "lots")])
            .byte_size("max")
            .expect_err("not a size");
        assert_eq!(err.field, "max");
    }

    #[test]
    fn truthy_is_daprs_loose_reading() {
        for yes in ["true", "TRUE", "yes", "Y", "on", "1", " t "] {
            assert!(is_truthy(yes), "{yes}");
        }
        for no in ["false", "0", "no", "off", "", "2", "maybe"] {
            assert!(!is_truthy(no), "{no}");
        }
    }
}
