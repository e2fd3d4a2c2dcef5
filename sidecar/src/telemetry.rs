//! Logs through tracing-subscriber: plain text, or with `--log-as-json` one JSON object per line
//! in Dapr's shape (`time`, `level`, `msg`, `scope`, `type`, `instance`, `ver`, `app_id`, plus the
//! event's fields), so log pipelines built for daprd keep working. Level from `--log-level`
//! unless `RUST_LOG` says more.

use crate::cli::LogLevel;
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub fn init_logs(level: LogLevel, json: bool, app_id: &str) {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Fatal => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,h2=warn,tower=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests in one process) keeps the first subscriber.
    let _ = if json {
        builder.event_format(DaprJson::new(app_id)).try_init()
    } else {
        builder.try_init()
    };
}

/// Dapr's JSON log line.
pub struct DaprJson {
    app_id: String,
    instance: String,
}

impl DaprJson {
    pub fn new(app_id: &str) -> Self {
        let instance = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        DaprJson {
            app_id: app_id.to_owned(),
            instance,
        }
    }

    /// The JSON object for one event (separated from the writer for tests).
    pub fn line(&self, level: &tracing::Level, target: &str, fields: Map<String, Value>) -> Value {
        let mut out = Map::new();
        let now = time::OffsetDateTime::now_utc();
        let time = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        out.insert("time".into(), Value::String(time));
        out.insert(
            "level".into(),
            Value::String(level.as_str().to_ascii_lowercase()),
        );
        out.insert("type".into(), Value::String("log".into()));
        out.insert("scope".into(), Value::String(target.replace("::", ".")));
        out.insert("instance".into(), Value::String(self.instance.clone()));
        out.insert(
            "ver".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
        out.insert("app_id".into(), Value::String(self.app_id.clone()));
        for (k, v) in fields {
            let key = if k == "message" { "msg".to_owned() } else { k };
            out.insert(key, v);
        }
        Value::Object(out)
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

impl<S, N> FormatEvent<S, N> for DaprJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        writeln!(
            writer,
            "{}",
            self.line(meta.level(), meta.target(), fields.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_daprs_fields() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("component ready".into()));
        fields.insert("component".into(), Value::String("statestore".into()));
        let line = DaprJson::new("order").line(
            &tracing::Level::INFO,
            "tandem_sidecar::components",
            fields,
        );
        assert_eq!(line["msg"], "component ready");
        assert_eq!(line["level"], "info");
        assert_eq!(line["scope"], "tandem_sidecar.components");
        assert_eq!(line["type"], "log");
        assert_eq!(line["app_id"], "order");
        assert_eq!(line["component"], "statestore");
        assert!(line["time"].as_str().is_some_and(|t| t.contains('T')));
    }
}
