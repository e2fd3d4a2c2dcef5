//! The webhook as a running thing: its serving certificate (from Secret [`TLS_SECRET`], created or
//! rotated by `tandem-webhook-tls`, refreshed hourly and hot-swapped), its TLS listener, and
//! [`run`], which serves `/convert` and keeps the CRD pointing at it until shutdown.

use super::{Error, TLS_SECRET, WebhookArgs, keep_crd_conversion, router};
use std::net::SocketAddr;
use std::sync::Arc;
use tandem_webhook_tls::{Certificates, Sans, ServingCert};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The webhook, bound and with its certificate, not yet serving.
pub struct Webhook {
    client: kube::Client,
    namespace: String,
    sans: Sans,
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    cert: Arc<ServingCert>,
    config: Arc<rustls::ServerConfig>,
}

impl Webhook {
    /// Reads (or creates) the serving certificate for `args.sans(namespace)` and binds
    /// `args.webhook_addr`.
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        args: &WebhookArgs,
    ) -> Result<Webhook, Error> {
        let sans = Sans::from_names(args.sans(namespace));
        let certs =
            tandem_webhook_tls::ensure(client.clone(), namespace, TLS_SECRET, &sans).await?;
        let cert = ServingCert::new(certs)?;
        let config = tandem_webhook_tls::server_config(Arc::clone(&cert))?;
        let addr = args.webhook_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Serve { addr, source })?;
        tracing::info!(%addr, "conversion webhook listening");
        Ok(Webhook {
            client,
            namespace: namespace.to_owned(),
            sans,
            addr,
            listener,
            cert,
            config,
        })
    }

    /// The certificates served, the CA among them, with every change.
    pub fn certificates(&self) -> watch::Receiver<Arc<Certificates>> {
        self.cert.subscribe()
    }

    /// Serves `POST /convert` until `shutdown`, refreshing the certificate meanwhile.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), Error> {
        let Webhook {
            client,
            namespace,
            sans,
            addr,
            listener,
            cert,
            config,
        } = self;
        let refresh = tandem_webhook_tls::refresh(
            client,
            namespace,
            TLS_SECRET.to_owned(),
            sans,
            cert,
            tandem_webhook_tls::REFRESH_INTERVAL,
            shutdown.clone(),
        );
        let refreshing = tokio::spawn(refresh.instrument(tracing::info_span!("webhook_cert")));
        let served = tandem_webhook_tls::serve(listener, config, router(), shutdown).await;
        refreshing.abort();
        served.map_err(|error| Error::Tls { addr, error })
    }
}

/// Starts the webhook when `args` enable it: serves it and keeps the CRD pointing at it, in a
/// task that cancels `shutdown` if it stops on its own (a replica that cannot convert must be
/// restarted).
pub async fn spawn(
    client: kube::Client,
    namespace: &str,
    args: &WebhookArgs,
    shutdown: CancellationToken,
) -> Result<Option<Running>, Error> {
    if !args.enable_conversion_webhook {
        tracing::info!("conversion webhook off");
        return Ok(None);
    }
    let webhook = Webhook::start(client.clone(), namespace, args).await?;
    let target = args.target(namespace);
    let addr = args.webhook_addr;
    let running = async move {
        let keeping = keep_crd_conversion(client, target, webhook.certificates(), shutdown.clone());
        let keeping = tokio::spawn(keeping.instrument(tracing::info_span!("crd_conversion")));
        let served = webhook.serve(shutdown.clone()).await;
        shutdown.cancel();
        keeping.abort();
        served
    };
    let span = tracing::info_span!("conversion_webhook", %addr);
    Ok(Some(Running(tokio::spawn(running.instrument(span)))))
}

/// The webhook's task.
pub struct Running(JoinHandle<Result<(), Error>>);

impl Running {
    /// Waits until the webhook has stopped; how it went.
    pub async fn stopped(self) -> Result<(), Error> {
        self.0
            .await
            .map_err(|error| Error::Stopped(error.to_string()))?
    }
}
