//! The MQTT 3.1.1 connection shared by `pubsub.mqtt3` and `bindings.mqtt3`: the metadata both
//! read ([`MqttSettings`], checked before any port is bound), the TLS set-up, and the live,
//! reconnecting client ([`client::MqttClient`]) that confirms publishes with the broker's PUBACK
//! and hands incoming messages over unacknowledged, so each is PUBACKed only once the runtime is
//! done with it.

pub mod client;
mod supervisor;
pub mod topic_filter;
mod tracker;

use super::metadata::{Metadata, MetadataError};
use percent_encoding::percent_decode_str;
use rumqttc::QoS;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

/// Where the broker is and how to talk to it, from the component metadata.
#[derive(Clone, PartialEq)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// From the url's `user:password@`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `Some` for `ssl://`, `mqtts://`, `tcps://` and `tls://` urls.
    pub tls: Option<TlsSettings>,
    /// `qos`: 0, 1 (the default) or 2; used to publish and to subscribe.
    pub qos: QoS,
    /// `retain`: publish with the retain flag.
    pub retain: bool,
    /// `cleanSession`: false (the default) keeps the broker-side session, so messages sent while
    /// a subscriber is away, and those it had not acknowledged, reach it when it comes back.
    pub clean_session: bool,
    /// `consumerID`: the client id of subscribing connections.
    pub consumer_id: Option<String>,
    /// `backOffMaxRetries`: how often a message the app failed is delivered again in process;
    /// `None` (unset or -1) means without limit.
    pub max_retries: Option<u32>,
}

/// PEM material for a TLS connection.
#[derive(Clone, PartialEq)]
pub struct TlsSettings {
    /// Trusted roots; the system's when unset.
    pub ca_cert: Option<String>,
    /// Client certificate chain and key, for mutual TLS.
    pub client_auth: Option<(String, String)>,
}

// By hand so a logged config never shows the password or the key.
impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("clean_session", &self.clean_session)
            .field("consumer_id", &self.consumer_id)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// A metadata value refused, naming the field.
fn refuse(field: &str, value: &str, reason: &str) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

const URL_FORM: &str =
    "expected tcp://host:port, mqtt://, ssl:// or mqtts:// (optionally with user:password@)";

impl MqttSettings {
    /// Reads `url`, `qos`, `retain`, `cleanSession`, `consumerID`, `caCert`/`clientCert`/
    /// `clientKey` and `backOffMaxRetries`.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let url = md.require("url")?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| refuse("url", url, URL_FORM))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => false,
            "ssl" | "mqtts" | "tcps" | "tls" => true,
            _ => {
                return Err(refuse(
                    "url",
                    url,
                    &format!("unknown scheme {scheme:?}; {URL_FORM}"),
                ));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(refuse("url", url, "a broker url has no path or query"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport, if secure { 8883 } else { 1883 })
            .ok_or_else(|| refuse("url", url, URL_FORM))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(info)), None),
            },
        };
        let qos = match md.int("qos")? {
            None | Some(1) => QoS::AtLeastOnce,
            Some(0) => QoS::AtMostOnce,
            Some(2) => QoS::ExactlyOnce,
            Some(n) => return Err(refuse("qos", &n.to_string(), "must be 0, 1 or 2")),
        };
        let max_retries = match md.int("backOffMaxRetries")? {
            None | Some(-1) => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                refuse(
                    "backOffMaxRetries",
                    &n.to_string(),
                    "must be -1 (no limit) or 0 or more",
                )
            })?),
        };
        let tls = tls_settings(md, secure)?;
        Ok(MqttSettings {
            host,
            port,
            username,
            password,
            tls,
            qos,
            retain: md.bool("retain", false)?,
            clean_session: md.bool("cleanSession", false)?,
            consumer_id: md.get("consumerID").map(str::to_owned),
            max_retries,
        })
    }

    /// `mqtt broker at host:port`, for error messages.
    pub fn target(&self) -> String {
        format!("mqtt broker at {}:{}", self.host, self.port)
    }
}

/// `host:port`, `host` (default port) or `[v6]:port`.
fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0)?,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The TLS fields: only with a TLS url, and each one must hold what it claims to.
fn tls_settings(md: &Metadata, secure: bool) -> Result<Option<TlsSettings>, MetadataError> {
    let ca_cert = md.get("caCert");
    let client_cert = md.get("clientCert");
    let client_key = md.get("clientKey");
    if !secure {
        for (field, value) in [
            ("caCert", ca_cert),
            ("clientCert", client_cert),
            ("clientKey", client_key),
        ] {
            if value.is_some() {
                return Err(refuse(
                    field,
                    "<pem>",
                    "needs a TLS url (ssl:// or mqtts://); the url is plain tcp",
                ));
            }
        }
        return Ok(None);
    }
    if let Some(ca) = ca_cert {
        certificates("caCert", ca)?;
    }
    let client_auth = match (client_cert, client_key) {
        (None, None) => None,
        (Some(_), None) => return Err(refuse("clientKey", "", "required with clientCert")),
        (None, Some(_)) => return Err(refuse("clientCert", "", "required with clientKey")),
        (Some(cert), Some(key)) => {
            certificates("clientCert", cert)?;
            private_key(key)?;
            Some((cert.to_owned(), key.to_owned()))
        }
    };
    Ok(Some(TlsSettings {
        ca_cert: ca_cert.map(str::to_owned),
        client_auth,
    }))
}

fn certificates(field: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, MetadataError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(field, "<pem>", &format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(refuse(field, "<pem>", "no PEM certificate found"));
    }
    Ok(certs)
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, MetadataError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| refuse("clientKey", "<pem>", &format!("not a PEM private key: {e}")))
}

impl TlsSettings {
    /// A rustls client configuration (ring provider) trusting `caCert`, or the system's roots.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_cert {
            Some(ca) => {
                let certs = certificates("caCert", ca).map_err(|e| e.to_string())?;
                roots.add_parsable_certificates(certs);
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        if roots.is_empty() {
            return Err("TLS: no trusted root certificate (set caCert)".into());
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
        let config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates("clientCert", cert).map_err(|e| e.to_string())?;
                let key = private_key(key).map_err(|e| e.to_string())?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("metadata field \"clientKey\": {e}"))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// The pause before the `attempt`-th in-process redelivery (1-based): 200 ms, doubling, at most
/// 10 s.
pub fn redelivery_delay(attempt: u32) -> Duration {
    let base = Duration::from_millis(200);
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(6))
        .min(Duration::from_secs(10))
}

/// Whether another in-process delivery is allowed after `redelivered` redeliveries.
pub fn may_redeliver(max_retries: Option<u32>, redelivered: u32) -> bool {
    max_retries.is_none_or(|max| redelivered < max)
}

#[cfg(test)]
mod tests;
