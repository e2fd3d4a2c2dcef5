//! [`Operator`]: the controllers of one process, run always or only while this replica holds the
//! leader Lease, over the dapr.io caches the process shares or caches of their own.

use crate::admin::Readiness;
use crate::cache::{self, Caches};
use crate::controller::{self, Reconciles, Scope};
use crate::error::{Error, Result};
use crate::leader::LeaderElection;
use crate::metrics::Metrics;
use futures_util::FutureExt;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The controllers, ready to run against one cluster.
pub struct Operator {
    client: kube::Client,
    scope: Scope,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    election: Option<LeaderElection>,
    reconciles: Reconciles,
    /// The dapr.io caches, when the process shares them (with the sidecar API); without them the
    /// operator keeps its own while it runs.
    caches: Option<Caches>,
}

impl Operator {
    /// Controllers over `namespace`, or every namespace when `None`.
    pub fn new(client: kube::Client, namespace: Option<String>) -> Result<Operator> {
        Ok(Operator {
            client,
            scope: Scope::new(namespace),
            metrics: Arc::new(Metrics::new()?),
            readiness: Readiness::default(),
            election: None,
            reconciles: Reconciles::Real,
            caches: None,
        })
    }

    /// Reads the dapr.io kinds from `caches` (kept current by the caller) instead of its own.
    pub fn with_caches(self, caches: Caches) -> Operator {
        Operator {
            caches: Some(caches),
            ..self
        }
    }

    /// Makes every reconcile a counted no-op (the benchmark baseline).
    pub fn with_reconciles(self, reconciles: Reconciles) -> Operator {
        Operator { reconciles, ..self }
    }

    /// Runs the controllers only while `election` holds its Lease (without it: always).
    pub fn with_leader_election(self, election: LeaderElection) -> Operator {
        Operator {
            election: Some(election),
            ..self
        }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Becomes ready once every controller's cache has synced, or, with leader election, once this
    /// replica knows it follows.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs until `shutdown` is cancelled (in-flight reconciles finish first, then the Lease is
    /// released) or a controller stops by itself (an error). With leader election the
    /// controllers run only while this replica holds the Lease. The election runs inside this
    /// future, not in a task of its own: dropping the future (a crash) stops renewing at once.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Operator {
            client,
            scope,
            metrics,
            readiness,
            election,
            reconciles,
            caches,
        } = self;
        let (caches, feeding) = match caches {
            Some(caches) => (caches, futures_util::future::pending().boxed()),
            None => cache::Caches::start(&client, &scope),
        };
        let feeding = feeding.instrument(tracing::info_span!("caches"));
        let running = async move {
            let Some(election) = election else {
                metrics.set_leader(true);
                let result = controller::run(
                    client,
                    scope,
                    &caches,
                    Arc::clone(&metrics),
                    readiness,
                    reconciles,
                    shutdown,
                );
                let result = result.await;
                metrics.set_leader(false);
                return result;
            };
            let (leading_tx, leading) = watch::channel(false);
            let stop_electing = CancellationToken::new();
            let electing = election
                .run(leading_tx, stop_electing.clone(), true)
                .instrument(tracing::info_span!("leader_election"));
            let controlling = async {
                let result = run_while_leading(
                    client, scope, &caches, metrics, readiness, reconciles, leading, &shutdown,
                );
                let result = result.await;
                // The controllers have stopped: now the Lease may go to another replica.
                stop_electing.cancel();
                result
            };
            let ((), result) = tokio::join!(electing, controlling);
            result
        };
        // The caches' feed never ends by itself: the controllers decide when this returns.
        tokio::select! {
            result = running => result,
            () = feeding => Err(Error::ControllerStopped("caches")),
        }
    }
}

/// Starts the controllers whenever `leading` turns true and stops them (at once, dropping any
/// in-flight reconcile) when it turns false; returns when `shutdown` is cancelled or a controller
/// fails.
#[allow(clippy::too_many_arguments)]
async fn run_while_leading(
    client: kube::Client,
    scope: Scope,
    caches: &Caches,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    reconciles: Reconciles,
    mut leading: watch::Receiver<bool>,
    shutdown: &CancellationToken,
) -> Result<()> {
    // The election's first round says whether we lead.
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = leading.changed() => {}
    }
    loop {
        if !*leading.borrow_and_update() {
            metrics.set_leader(false);
            // A follower has no cache to sync: it is as ready as it will be.
            readiness.set_ready();
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                elected = leading.wait_for(|leading| *leading) => {
                    if elected.is_err() {
                        return Ok(());
                    }
                }
            }
            leading.borrow_and_update();
        }
        tracing::info!("leading: starting the controllers");
        metrics.set_leader(true);
        let term = shutdown.child_token();
        let mut controllers = Box::pin(controller::run(
            client.clone(),
            scope.clone(),
            caches,
            Arc::clone(&metrics),
            readiness.clone(),
            reconciles,
            term.clone(),
        ));
        tokio::select! {
            result = &mut controllers => {
                metrics.set_leader(false);
                return result;
            }
            _ = leading.wait_for(|leading| !*leading) => {
                // Another replica may lead already: not one more write from this one.
                term.cancel();
                drop(controllers);
                metrics.set_leader(false);
                tracing::warn!("lost the lease: controllers stopped");
            }
        }
    }
}
