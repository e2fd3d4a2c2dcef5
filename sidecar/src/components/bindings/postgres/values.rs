//! JSON ↔ PostgreSQL values for the binding.
//!
//! Parameters (request metadata `params`, a JSON array) are sent in text format, so the server
//! reads each one by the type the statement gives its placeholder: `42` fits an `integer`,
//! a `numeric` or a `text` column alike, much as pgx's loose encoding of JSON-decoded values
//! does for Dapr. Result columns arrive in binary and become JSON text the way Go's
//! `json.Marshal` prints what pgx's `rows.Values()` returns: numbers, strings, booleans,
//! `null`, nested JSON for `json`/`jsonb`, base64 for `bytea`, RFC 3339 for timestamps, exact
//! decimals for `numeric`. Types without a JSON reading are refused with a hint to cast.

use super::super::go_time;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::Value;
use std::error::Error;
use std::fmt::Write as _;
use tokio_postgres::Row;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One parameter, sent as text.
#[derive(Debug)]
pub struct Param(pub Value);

/// A JSON value as PostgreSQL input text. Whole numbers print without a fraction (`1`, not
/// `1.0`) so they also fit integer columns; arrays for array-typed placeholders become array
/// literals; other arrays and objects stay JSON (for `json`/`jsonb`).
fn input_text(value: &Value, ty: &Type) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::Array(items) if matches!(ty.kind(), Kind::Array(_)) => {
            let element = match ty.kind() {
                Kind::Array(element) => element,
                _ => ty,
            };
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::Null => "NULL".to_owned(),
                    Value::Array(_) => input_text(item, ty),
                    _ => {
                        let text = input_text(item, element);
                        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if self.0.is_null() {
            return Ok(IsNull::Yes);
        }
        out.extend_from_slice(input_text(&self.0, ty).as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A column's bytes, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn json<T: serde::Serialize>(value: T) -> Result<String, BoxError> {
    Ok(serde_json::to_string(&value)?)
}

/// A big-endian integer of `N` bytes at `at`.
fn be<const N: usize>(raw: &[u8], at: usize) -> Result<[u8; N], BoxError> {
    raw.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "value shorter than its type".into())
}

/// `numeric`'s binary form (base-10000 digits) as an exact decimal.
fn numeric(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| be::<2>(raw, i * 2);
    let ndigits = usize::from(u16::from_be_bytes(word(0)?));
    let weight = i32::from(i16::from_be_bytes(word(1)?));
    let sign = u16::from_be_bytes(word(2)?);
    let dscale = usize::from(u16::from_be_bytes(word(3)?));
    match sign {
        0xC000 => return json("NaN"),
        0xD000 => return json("Infinity"),
        0xF000 => return json("-Infinity"),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i).map(i16::from_be_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    // digits[i] counts 10000^(weight - i).
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut text = String::from(if sign == 0x4000 { "-" } else { "" });
    if weight < 0 {
        text.push('0');
    }
    for i in 0..=weight {
        let _ = if i == 0 {
            write!(text, "{}", digit(i))
        } else {
            write!(text, "{:04}", digit(i))
        };
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(i));
            i += 1;
        }
        fraction.truncate(dscale);
        let _ = write!(text, ".{fraction}");
    }
    Ok(text)
}

/// A timestamp (microseconds since 2000-01-01) as Go prints a `time.Time`.
fn timestamp(raw: &[u8]) -> Result<String, BoxError> {
    let micros = i64::from_be_bytes(be::<8>(raw, 0)?);
    match micros {
        i64::MAX => json("infinity"),
        i64::MIN => json("-infinity"),
        _ => {
            let t = micros
                .checked_add(PG_EPOCH_MICROS)
                .and_then(DateTime::from_timestamp_micros)
                .ok_or("timestamp out of range")?;
            json(go_time::rfc3339_nano(t))
        }
    }
}

/// An array's binary form: dimensions, then every element, nested by dimension.
fn array(element: &Type, raw: &[u8]) -> Result<String, BoxError> {
    let int = |at: usize| be::<4>(raw, at).map(i32::from_be_bytes);
    let ndim = usize::try_from(int(0)?)?;
    let mut at = 12;
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        dims.push(usize::try_from(int(at)?)?);
        at += 8;
    }
    let total: usize = if ndim == 0 { 0 } else { dims.iter().product() };
    let mut cells = Vec::with_capacity(total);
    for _ in 0..total {
        let len = int(at)?;
        at += 4;
        match usize::try_from(len) {
            Err(_) => cells.push("null".to_owned()),
            Ok(len) => {
                let bytes = raw.get(at..at + len).ok_or("array shorter than it says")?;
                cells.push(cell(element, bytes)?);
                at += len;
            }
        }
    }
    // Group the flat cells innermost dimension first.
    for &size in dims.iter().skip(1).rev() {
        cells = cells
            .chunks(size.max(1))
            .map(|chunk| format!("[{}]", chunk.join(",")))
            .collect();
    }
    Ok(format!("[{}]", cells.join(",")))
}

/// One non-NULL value as JSON text.
fn cell(ty: &Type, raw: &[u8]) -> Result<String, BoxError> {
    match *ty {
        Type::BOOL => json(bool::from_sql(ty, raw)?),
        Type::INT2 => json(i16::from_sql(ty, raw)?),
        Type::INT4 => json(i32::from_sql(ty, raw)?),
        Type::INT8 => json(i64::from_sql(ty, raw)?),
        Type::OID => json(u32::from_sql(ty, raw)?),
        Type::FLOAT4 | Type::FLOAT8 => {
            let f = if *ty == Type::FLOAT4 {
                f64::from(f32::from_sql(ty, raw)?)
            } else {
                f64::from_sql(ty, raw)?
            };
            // Go prints whole floats without a fraction. JSON has no NaN or infinities: those
            // come back as strings.
            if f.fract() == 0.0 && f.abs() < 1e15 {
                Ok(format!("{f:.0}"))
            } else if f.is_finite() {
                json(f)
            } else {
                json(f.to_string())
            }
        }
        Type::NUMERIC => numeric(raw),
        Type::JSON => Ok(serde_json::from_slice::<&serde_json::value::RawValue>(raw)?
            .get()
            .to_owned()),
        Type::JSONB => {
            let text = raw.strip_prefix(&[1]).ok_or("unknown jsonb version")?;
            Ok(
                serde_json::from_slice::<&serde_json::value::RawValue>(text)?
                    .get()
                    .to_owned(),
            )
        }
        Type::BYTEA => json(BASE64.encode(raw)),
        Type::UUID => json(uuid::Uuid::from_slice(raw)?.to_string()),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => timestamp(raw),
        Type::DATE => {
            let days = i32::from_be_bytes(be::<4>(raw, 0)?);
            let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).ok_or("date epoch")?;
            match epoch.checked_add_signed(chrono::Duration::days(i64::from(days))) {
                Some(date) => json(format!("{}T00:00:00Z", date.format("%Y-%m-%d"))),
                None => json(if days > 0 { "infinity" } else { "-infinity" }),
            }
        }
        Type::TIME => {
            let micros = i64::from_be_bytes(be::<8>(raw, 0)?);
            let secs = u32::try_from(micros / 1_000_000)?;
            let nanos = u32::try_from(micros % 1_000_000)? * 1000;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                .ok_or("time out of range")?;
            json(time.format("%H:%M:%S%.f").to_string())
        }
        _ if <&str as FromSql>::accepts(ty) => json(<&str>::from_sql(ty, raw)?),
        _ => match ty.kind() {
            Kind::Array(element) => array(element, raw),
            Kind::Enum(_) => json(std::str::from_utf8(raw)?),
            Kind::Domain(inner) => cell(inner, raw),
            _ => Err(format!(
                "type {} has no JSON form here; cast it in the query (::text)",
                ty.name()
            )
            .into()),
        },
    }
}

/// A result row as a JSON array of its column values, as Dapr returns rows.
pub fn row_json(row: &Row) -> Result<String, String> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw: Option<Raw> = row.try_get(i).map_err(|e| e.to_string())?;
        cells.push(match raw {
            None => "null".to_owned(),
            Some(Raw(bytes)) => cell(column.type_(), bytes)
                .map_err(|e| format!("column {:?}: {e}", column.name()))?,
        });
    }
    Ok(format!("[{}]", cells.join(",")))
}
