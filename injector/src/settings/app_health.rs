//! `dapr.io/enable-app-health-check` and the `dapr.io/app-health-*` annotations: read and
//! checked as the sidecar will check its flags, so a pod is refused here (naming the
//! annotation) rather than left crash-looping on a value the sidecar would reject.

use super::read::Annotations;
use super::{SettingsError, invalid};
use tandem_crds::annotations::{defaults, flags, keys};

/// The sidecar's app health check, when the pod asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHealth {
    pub path: String,
    pub probe_interval_seconds: u64,
    pub probe_timeout_ms: u64,
    pub threshold: u32,
}

impl AppHealth {
    /// The sidecar flags that ask for this check.
    pub fn flags(&self) -> [(&'static str, String); 5] {
        [
            (flags::ENABLE_APP_HEALTH_CHECK, "true".to_owned()),
            (flags::APP_HEALTH_CHECK_PATH, self.path.clone()),
            (
                flags::APP_HEALTH_PROBE_INTERVAL,
                self.probe_interval_seconds.to_string(),
            ),
            (
                flags::APP_HEALTH_PROBE_TIMEOUT,
                self.probe_timeout_ms.to_string(),
            ),
            (flags::APP_HEALTH_THRESHOLD, self.threshold.to_string()),
        ]
    }
}

/// `None` unless `dapr.io/enable-app-health-check` is true; unset values take Dapr's defaults
/// (`/healthz`, 5 s, 500 ms, 3).
pub fn app_health(read: &Annotations<'_>) -> Result<Option<AppHealth>, SettingsError> {
    if !read.bool(keys::ENABLE_APP_HEALTH_CHECK, false)? {
        return Ok(None);
    }
    let path = read
        .get(keys::APP_HEALTH_CHECK_PATH)
        .unwrap_or(defaults::APP_HEALTH_CHECK_PATH);
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(invalid(
            keys::APP_HEALTH_CHECK_PATH,
            path,
            "is not a path (like /healthz)",
        ));
    }
    let positive = |key: &'static str, default: u64| match read.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(key, v, "is not a whole number above 0")),
    };
    let interval = positive(
        keys::APP_HEALTH_PROBE_INTERVAL,
        defaults::APP_HEALTH_PROBE_INTERVAL_SECONDS,
    )?;
    let timeout = positive(
        keys::APP_HEALTH_PROBE_TIMEOUT,
        defaults::APP_HEALTH_PROBE_TIMEOUT_MS,
    )?;
    if timeout > interval.saturating_mul(1000) {
        return Err(invalid(
            keys::APP_HEALTH_PROBE_TIMEOUT,
            &timeout.to_string(),
            format!("(ms) must not exceed the probe interval ({interval} s)"),
        ));
    }
    let threshold = positive(
        keys::APP_HEALTH_THRESHOLD,
        u64::from(defaults::APP_HEALTH_THRESHOLD),
    )?;
    let threshold = u32::try_from(threshold).map_err(|_| {
        invalid(
            keys::APP_HEALTH_THRESHOLD,
            &threshold.to_string(),
            "is too large",
        )
    })?;
    Ok(Some(AppHealth {
        path: path.to_owned(),
        probe_interval_seconds: interval,
        probe_timeout_ms: timeout,
        threshold,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<AppHealth>, SettingsError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        app_health(&Annotations::new(&map))
    }

    #[test]
    fn off_unless_enabled_and_daprs_defaults() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[(keys::APP_HEALTH_THRESHOLD, "9")]), Ok(None));
        assert_eq!(read(&[(keys::ENABLE_APP_HEALTH_CHECK, "false")]), Ok(None));
        assert_eq!(
            read(&[(keys::ENABLE_APP_HEALTH_CHECK, "true")]),
            Ok(Some(AppHealth {
                path: "/healthz".into(),
                probe_interval_seconds: 5,
                probe_timeout_ms: 500,
                threshold: 3,
            }))
        );
        assert_eq!(
            read(&[
                (keys::ENABLE_APP_HEALTH_CHECK, "yes"),
                (keys::APP_HEALTH_CHECK_PATH, "/ready"),
                (keys::APP_HEALTH_PROBE_INTERVAL, "2"),
                (keys::APP_HEALTH_PROBE_TIMEOUT, "2000"),
                (keys::APP_HEALTH_THRESHOLD, "1"),
            ]),
            Ok(Some(AppHealth {
                path: "/ready".into(),
                probe_interval_seconds: 2,
                probe_timeout_ms: 2000,
                threshold: 1,
            }))
        );
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let on = (keys::ENABLE_APP_HEALTH_CHECK, "true");
        for (key, value) in [
            (keys::ENABLE_APP_HEALTH_CHECK, "perhaps"),
            (keys::APP_HEALTH_CHECK_PATH, "healthz"),
            (keys::APP_HEALTH_PROBE_INTERVAL, "0"),
            (keys::APP_HEALTH_PROBE_INTERVAL, "5s"),
            (keys::APP_HEALTH_PROBE_TIMEOUT, "-1"),
            (keys::APP_HEALTH_PROBE_TIMEOUT, "6000"),
            (keys::APP_HEALTH_THRESHOLD, "0"),
            (keys::APP_HEALTH_THRESHOLD, "99999999999"),
        ] {
            let error = read(&[on, (key, value)]).expect_err(&format!("{key}={value}"));
            assert_eq!(error.key, key, "{key}={value}: {error}");
        }
    }
}
