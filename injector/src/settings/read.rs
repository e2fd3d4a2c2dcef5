//! Reading one annotation at a time: [`Annotations`] trims values, treats an empty one as unset,
//! applies the default, and turns a value Tandem cannot use into a [`SettingsError`] naming the
//! annotation and the value.

use super::{ExtraMount, Probe, SecretEnv, SettingsError, ValueKind, invalid};
use crate::config::{is_dns_label, is_dns_subdomain};
use std::collections::BTreeMap;
use tandem_crds::annotations::{defaults, is_truthy, keys};

/// A pod's annotations, read one key at a time.
#[derive(Debug, Clone, Copy)]
pub struct Annotations<'a> {
    map: &'a BTreeMap<String, String>,
}

impl<'a> Annotations<'a> {
    pub fn new(map: &'a BTreeMap<String, String>) -> Annotations<'a> {
        Annotations { map }
    }

    /// The trimmed value; `None` when unset or blank.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.map
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `dapr.io/app-id`, else the pod's name (with a warning); `<app-id>-dapr` must be a DNS label.
    pub fn app_id(
        &self,
        pod_name: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Result<String, SettingsError> {
        let app_id = match (self.get(keys::APP_ID), pod_name.filter(|n| !n.is_empty())) {
            (Some(id), _) => id.to_owned(),
            (None, Some(name)) => {
                warnings.push(format!(
                    "{} is not set; using the pod name {name:?} as the app id",
                    keys::APP_ID
                ));
                name.to_owned()
            }
            (None, None) => {
                return Err(invalid(
                    keys::APP_ID,
                    "",
                    "must be set: the pod has no name yet (generateName)",
                ));
            }
        };
        if !is_dns_label(&format!("{app_id}-dapr")) {
            return Err(invalid(
                keys::APP_ID,
                &app_id,
                "is not a valid app id: <app-id>-dapr must be a DNS-1123 label (lowercase letters, digits, '-', at most 63 characters)",
            ));
        }
        Ok(app_id)
    }

    /// A port (1-65535), when set.
    pub fn port(&self, key: &'static str) -> Result<Option<u16>, SettingsError> {
        self.get(key)
            .map(|v| {
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid(key, v, "is not a port (1-65535)"))
            })
            .transpose()
    }

    pub fn bool(&self, key: &'static str, default: bool) -> Result<bool, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if ValueKind::Bool.accepts(v) => Ok(is_truthy(v)),
            Some(v) => Err(invalid(key, v, "is not a boolean (true/false)")),
        }
    }

    /// One of `allowed` (compared in lowercase, returned in lowercase).
    pub fn one_of(
        &self,
        key: &'static str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, SettingsError> {
        let value = self.get(key).unwrap_or(default).to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(invalid(
                key,
                &value,
                format!("is not one of {}", allowed.join(", ")),
            ))
        }
    }

    /// A Kubernetes resource quantity, when set.
    pub fn quantity(&self, key: &'static str) -> Result<Option<String>, SettingsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if is_quantity(v) => Ok(Some(v.to_owned())),
            Some(v) => Err(invalid(
                key,
                v,
                "is not a Kubernetes quantity (like 100m, 0.5, 128Mi)",
            )),
        }
    }

    /// A probe from its four annotations (delay, timeout, period, threshold) and Dapr's defaults.
    pub fn probe(
        &self,
        keys: [&'static str; 4],
        defaults: (i32, i32, i32, i32),
    ) -> Result<Probe, SettingsError> {
        let field = |key: &'static str, default: i32, min: i32| match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| invalid(key, v, format!("is not a whole number >= {min}"))),
        };
        Ok(Probe {
            initial_delay_seconds: field(keys[0], defaults.0, 0)?,
            timeout_seconds: field(keys[1], defaults.1, 1)?,
            period_seconds: field(keys[2], defaults.2, 1)?,
            failure_threshold: field(keys[3], defaults.3, 1)?,
        })
    }

    /// The name of a Kubernetes object (a Configuration, a Secret), when set.
    pub fn object_name(&self, key: &'static str) -> Result<Option<String>, SettingsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if is_dns_subdomain(v) => Ok(Some(v.to_owned())),
            Some(v) => Err(invalid(key, v, "is not a Kubernetes object name")),
        }
    }

    /// `dapr.io/sidecar-listen-addresses`: IP addresses, comma-separated.
    pub fn listen_addresses(&self) -> Result<&'a str, SettingsError> {
        let key = keys::SIDECAR_LISTEN_ADDRESSES;
        let addresses = self.get(key).unwrap_or(defaults::SIDECAR_LISTEN_ADDRESSES);
        for addr in addresses.split(',') {
            let bare = addr.trim().trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    key,
                    addresses,
                    "must be IP addresses, comma-separated",
                ));
            }
        }
        Ok(addresses)
    }

    /// Seconds; unset or `-1` is the sidecar's default.
    pub fn graceful_shutdown_seconds(&self) -> Result<Option<u64>, SettingsError> {
        let key = keys::GRACEFUL_SHUTDOWN_SECONDS;
        match self.get(key) {
            None | Some("-1") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| invalid(key, v, "is not a whole number of seconds")),
        }
    }

    /// `dapr.io/max-body-size`, else the legacy `dapr.io/http-max-request-size` (megabytes).
    pub fn max_body_size(&self) -> Result<Option<String>, SettingsError> {
        match (
            self.get(keys::MAX_BODY_SIZE),
            self.get(keys::HTTP_MAX_REQUEST_SIZE),
        ) {
            (Some(size), _) if is_size(size) => Ok(Some(size.to_owned())),
            (Some(size), _) => Err(invalid(
                keys::MAX_BODY_SIZE,
                size,
                "is not a size (like 4Mi or 4194304)",
            )),
            (None, Some(mb)) => match mb.parse::<u32>() {
                Ok(mb) if mb > 0 => Ok(Some(format!("{mb}Mi"))),
                _ => Err(invalid(
                    keys::HTTP_MAX_REQUEST_SIZE,
                    mb,
                    "is not a whole number of megabytes",
                )),
            },
            (None, None) => Ok(None),
        }
    }

    pub fn image(&self) -> Result<Option<String>, SettingsError> {
        match self.get(keys::SIDECAR_IMAGE) {
            Some(image) if image.contains(char::is_whitespace) => Err(invalid(
                keys::SIDECAR_IMAGE,
                image,
                "is not an image reference",
            )),
            other => Ok(other.map(str::to_owned)),
        }
    }

    pub fn seccomp_profile_type(&self) -> Result<Option<String>, SettingsError> {
        match self.get(keys::SIDECAR_SECCOMP_PROFILE_TYPE) {
            None => Ok(None),
            Some(t @ ("RuntimeDefault" | "Unconfined" | "Localhost")) => Ok(Some(t.to_owned())),
            Some(t) => Err(invalid(
                keys::SIDECAR_SECCOMP_PROFILE_TYPE,
                t,
                "is not one of RuntimeDefault, Unconfined, Localhost",
            )),
        }
    }

    /// `dapr.io/env`: `K=V,K2=V2` (values may contain `=`; entries are trimmed).
    pub fn env(&self) -> Result<Vec<(String, String)>, SettingsError> {
        let mut env: Vec<(String, String)> = Vec::new();
        for entry in entries(self.get(keys::ENV)) {
            let (name, val) = entry
                .split_once('=')
                .ok_or_else(|| invalid(keys::ENV, entry, "is not NAME=value"))?;
            let name = name.trim();
            if !is_env_name(name) {
                return Err(invalid(
                    keys::ENV,
                    name,
                    "is not an environment variable name",
                ));
            }
            if env.iter().any(|(n, _)| n == name) {
                return Err(invalid(keys::ENV, name, "is listed twice"));
            }
            env.push((name.to_owned(), val.trim().to_owned()));
        }
        Ok(env)
    }

    /// `dapr.io/env-from-secret`: `K=secret` (key `secret`) or `K=secret:key`, comma-separated.
    pub fn env_from_secret(&self) -> Result<Vec<SecretEnv>, SettingsError> {
        let mut env = Vec::new();
        for entry in entries(self.get(keys::ENV_FROM_SECRET)) {
            let bad = || {
                invalid(
                    keys::ENV_FROM_SECRET,
                    entry,
                    "is not NAME=secret or NAME=secret:key",
                )
            };
            let (name, source) = entry.split_once('=').ok_or_else(bad)?;
            let (secret, key) = source.split_once(':').unwrap_or((source, source));
            let (name, secret, key) = (name.trim(), secret.trim(), key.trim());
            if !is_env_name(name) || !is_dns_subdomain(secret) || key.is_empty() {
                return Err(bad());
            }
            env.push(SecretEnv {
                name: name.to_owned(),
                secret: secret.to_owned(),
                key: key.to_owned(),
            });
        }
        Ok(env)
    }

    /// `volume:/path,...` from `key`, mounted `read_only` or not.
    pub fn mounts(
        &self,
        key: &'static str,
        read_only: bool,
    ) -> Result<Vec<ExtraMount>, SettingsError> {
        entries(self.get(key))
            .map(|entry| {
                let (volume, path) = entry
                    .split_once(':')
                    .filter(|(v, p)| !v.is_empty() && p.starts_with('/'))
                    .ok_or_else(|| invalid(key, entry, "is not volume:/absolute/path"))?;
                Ok(ExtraMount {
                    volume: volume.to_owned(),
                    path: path.to_owned(),
                    read_only,
                })
            })
            .collect()
    }
}

/// The non-empty, trimmed entries of a comma-separated list.
fn entries(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A Kubernetes resource quantity: a decimal number with an optional binary (`Ki`…`Ei`),
/// decimal (`n`, `u`, `m`, `k`, `M`…`E`) or exponent (`e3`) suffix.
pub fn is_quantity(value: &str) -> bool {
    let value = value.strip_prefix(['+', '-']).unwrap_or(value);
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// A size as the sidecar's `--max-body-size` reads it: bytes, or `K/M/G(B)` / `Ki/Mi/Gi(B)`.
fn is_size(value: &str) -> bool {
    let end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && matches!(
            unit.trim(),
            "" | "B"
                | "K"
                | "KB"
                | "k"
                | "kB"
                | "Ki"
                | "KiB"
                | "M"
                | "MB"
                | "Mi"
                | "MiB"
                | "G"
                | "GB"
                | "Gi"
                | "GiB"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_kubernetes_reads_them() {
        for good in [
            "100m", "0.5", "1", "128Mi", "1Gi", "2e3", "1E-2", "+1k", ".5", "500u",
        ] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "m", "lots", "1.2.3", "12XB", "1 Gi", "1e", "Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn sizes_as_the_sidecar_reads_them() {
        for good in ["4Mi", "4194304", "10MB", "1.5Gi"] {
            assert!(is_size(good), "{good}");
        }
        for bad in ["", "0", "big", "4Pi", "-1"] {
            assert!(!is_size(bad), "{bad}");
        }
    }
}
