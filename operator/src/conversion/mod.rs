//! Dapr's Subscription conversion webhook: the apiserver stores `subscriptions.dapr.io` at
//! v2alpha1 and asks `POST /convert` to turn objects into the version a client reads or writes.
//!
//! - `review`: the conversion, a pure function of the `ConversionReview`.
//! - `server`: the axum handler around it; `webhook`: served over TLS with a certificate from
//!   `tandem-webhook-tls` (Secret [`TLS_SECRET`] in the operator's namespace).
//! - `crd`: keeps the CRD's `spec.conversion` pointing at this webhook with the current CA: set at
//!   start-up and again whenever someone changes it (written only when it differs).
//!
//! Every replica serves `/convert` and keeps the CRD; the no-op write check makes that safe.

mod crd;
mod review;
mod server;
mod webhook;

pub use crd::{ClientTarget, desired_conversion, keep_crd_conversion, merge_patch, up_to_date};
pub use review::{ConversionError, ROUTES_ANNOTATION, V1ALPHA1, V2ALPHA1, convert, convert_all};
pub use server::router;
pub use webhook::{Running, Webhook, spawn};

use std::net::SocketAddr;

/// The Secret holding the webhook's CA and serving certificate.
pub const TLS_SECRET: &str = "tandem-webhook-tls";
/// The path the apiserver posts `ConversionReview`s to.
pub const PATH: &str = "/convert";
/// The CRD whose conversion this webhook serves.
pub const CRD_NAME: &str = "subscriptions.dapr.io";

/// The conversion webhook's flags (flattened into `tandem-operator`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Serve the Subscription conversion webhook and keep the CRD pointing at it
    /// (`--enable-conversion-webhook=false`: neither).
    #[arg(
        long,
        env = "ENABLE_WEBHOOKS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub enable_conversion_webhook: bool,
    /// Where to serve `POST /convert` (HTTPS).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_WEBHOOK_ADDR",
        default_value = "0.0.0.0:19443"
    )]
    pub webhook_addr: SocketAddr,
    /// The Service in front of the webhook (port 443), in the operator's namespace; also the
    /// serving certificate's DNS names.
    #[arg(
        long,
        env = "TANDEM_OPERATOR_WEBHOOK_SERVICE_NAME",
        default_value = "tandem-webhook"
    )]
    pub webhook_service_name: String,
    /// Have the apiserver call this URL instead of the Service (for tests outside a cluster).
    #[arg(long, env = "TANDEM_OPERATOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(
        long = "webhook-tls-san",
        env = "TANDEM_OPERATOR_WEBHOOK_TLS_SANS",
        value_delimiter = ','
    )]
    pub webhook_tls_sans: Vec<String>,
}

impl WebhookArgs {
    /// Where the apiserver should send conversions for an operator in `namespace`.
    pub fn target(&self, namespace: &str) -> ClientTarget {
        match &self.webhook_url {
            Some(url) => ClientTarget::Url(url.clone()),
            None => ClientTarget::Service {
                namespace: namespace.to_owned(),
                name: self.webhook_service_name.clone(),
            },
        }
    }

    /// The serving certificate's names: the Service's, then the extra ones.
    pub fn sans(&self, namespace: &str) -> Vec<String> {
        let name = &self.webhook_service_name;
        let mut sans = vec![
            name.clone(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
        ];
        sans.extend(self.webhook_tls_sans.iter().cloned());
        sans
    }
}

/// Why the webhook could not be served or the CRD kept.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening address could not be bound or served.
    #[error("conversion webhook on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The serving certificate could not be read or created.
    #[error("conversion webhook certificate (Secret {TLS_SECRET}): {0}")]
    Certificates(#[from] tandem_webhook_tls::secret::Error),
    /// rustls refused the certificate.
    #[error("conversion webhook TLS: {0}")]
    Config(#[from] tandem_webhook_tls::tls::Error),
    /// Serving over TLS failed.
    #[error("conversion webhook on {addr}: {error}")]
    Tls {
        addr: SocketAddr,
        #[source]
        error: tandem_webhook_tls::tls::Error,
    },
    /// The webhook's task ended abnormally.
    #[error("the conversion webhook stopped: {0}")]
    Stopped(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    #[test]
    fn flags_default_to_the_service_and_take_extra_sans() {
        let flags = Flags::try_parse_from(["x"]).expect("defaults");
        let w = flags.webhook;
        assert!(w.enable_conversion_webhook);
        assert_eq!(w.webhook_addr.to_string(), "0.0.0.0:19443");
        assert_eq!(
            w.target("tandem"),
            ClientTarget::Service {
                namespace: "tandem".into(),
                name: "tandem-webhook".into()
            }
        );
        assert_eq!(
            w.sans("tandem"),
            [
                "tandem-webhook",
                "tandem-webhook.tandem",
                "tandem-webhook.tandem.svc"
            ]
        );
        let flags = Flags::try_parse_from([
            "x",
            "--enable-conversion-webhook=false",
            "--webhook-url",
            "https://127.0.0.1:9443/convert",
            "--webhook-tls-san",
            "127.0.0.1",
            "--webhook-tls-san=localhost,::1",
        ])
        .expect("flags");
        let w = flags.webhook;
        assert!(!w.enable_conversion_webhook);
        assert_eq!(
            w.target("ns"),
            ClientTarget::Url("https://127.0.0.1:9443/convert".into())
        );
        assert_eq!(&w.sans("ns")[3..], ["127.0.0.1", "localhost", "::1"]);
        assert!(Flags::try_parse_from(["x", "--webhook-addr", "nope"]).is_err());
    }
}
