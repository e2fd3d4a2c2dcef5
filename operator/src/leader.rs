//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go does it: the holder
//! renews the Lease every retry period; anyone may take it over once its renew time is older than
//! its lease duration. Every write is a create or a replace carrying the `resourceVersion` that was
//! read, so of two replicas racing for the same Lease the apiserver lets exactly one win (409 for
//! the other).
//!
//! `lease_decision` and `next_lease` are the pure rules; `LeaderElection::run` is the loop that
//! reads, decides, writes and publishes "am I leading" on a `watch` channel. A leader that cannot
//! renew within the renew deadline steps down on its own, before the lease runs out for others.
//! On a graceful stop it releases the Lease (no holder) so another replica takes over at once.

mod rules;

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use rules::released;
pub use rules::*;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This replica's identity: `POD_NAME`, or the hostname with a random suffix (two processes on
/// one host must not share an identity).
pub fn default_identity() -> String {
    match std::env::var("POD_NAME") {
        Ok(pod) if !pod.is_empty() => return pod,
        _ => {}
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
        })
        .unwrap_or_else(|| "tandem-operator".to_owned());
    format!("{host}_{:08x}", rand::random::<u32>())
}

/// One replica's candidacy for one Lease.
#[derive(Clone)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
}

impl std::fmt::Debug for LeaderElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElection")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("timings", &self.timings)
            .finish()
    }
}

impl LeaderElection {
    /// Candidacy as `identity` for the Lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: impl Into<String>,
        identity: impl Into<String>,
        timings: Timings,
    ) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            timings,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One round: read the Lease, decide, write. `Ok(true)`: we hold it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::api(format!("get Lease {}", self.name)))?;
        let now = Timestamp::now();
        let duration = self.timings.lease_duration;
        let decision = lease_decision(current.as_ref(), &self.identity, now, duration);
        let Some(next) = next_lease(
            current.as_ref(),
            &self.name,
            &decision,
            &self.identity,
            now,
            duration,
        ) else {
            return Ok(false);
        };
        let written = match current {
            None => self.api.create(&PostParams::default(), &next).await,
            Some(_) => {
                self.api
                    .replace(&self.name, &PostParams::default(), &next)
                    .await
            }
        };
        match written {
            Ok(_) => {
                if decision == Decision::Acquire {
                    tracing::info!(identity = %self.identity, lease = %self.name, "acquired the lease");
                }
                Ok(true)
            }
            // Someone else wrote first (409 on replace, 409 on a create that lost the race).
            Err(kube::Error::Api(status)) if status.is_conflict() || status.code == 409 => {
                Ok(false)
            }
            Err(error) => Err(Error::api(format!("write Lease {}", self.name))(error)),
        }
    }

    /// Gives the Lease up if we hold it.
    pub async fn release(&self) -> Result<()> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::api(format!("get Lease {}", self.name)))?;
        let Some(lease) = current else { return Ok(()) };
        let holder = lease
            .spec
            .as_ref()
            .and_then(|spec| spec.holder_identity.as_deref());
        if holder != Some(self.identity.as_str()) {
            return Ok(());
        }
        self.api
            .replace(
                &self.name,
                &PostParams::default(),
                &released(&lease, Timestamp::now()),
            )
            .await
            .map_err(Error::api(format!("release Lease {}", self.name)))?;
        tracing::info!(identity = %self.identity, lease = %self.name, "released the lease");
        Ok(())
    }

    /// Tries for (and renews) the Lease every retry period and publishes whether we lead on
    /// `leading`, until `stop` is cancelled; then releases the Lease if `release` is true and we
    /// held it.
    pub async fn run(self, leading: watch::Sender<bool>, stop: CancellationToken, release: bool) {
        let Timings {
            renew_deadline,
            retry_period,
            ..
        } = self.timings;
        let mut renewed: Option<Instant> = None;
        // The first round is published even when it changes nothing: it tells a follower that it
        // follows.
        let mut first = true;
        loop {
            // A leader's round may not outlast its renew deadline, or a leader stuck in it would
            // not step down in time.
            let round = tokio::time::timeout(
                until_deadline(renewed, renew_deadline),
                self.try_acquire_or_renew(),
            );
            let held = tokio::select! {
                _ = stop.cancelled() => break,
                round = round => round,
            };
            match held {
                Ok(Ok(true)) => renewed = Some(Instant::now()),
                Ok(Ok(false)) => renewed = None,
                Ok(Err(error)) => tracing::warn!(%error, "leader election round failed"),
                Err(_) => tracing::warn!(?renew_deadline, "leader election round timed out"),
            }
            let is_leading = renewed.is_some_and(|at| at.elapsed() < renew_deadline);
            if !is_leading {
                renewed = None;
            }
            leading.send_if_modified(|was| {
                if *was == is_leading {
                    return std::mem::take(&mut first);
                }
                first = false;
                if is_leading {
                    tracing::info!(identity = %self.identity, "leading");
                } else {
                    tracing::warn!(identity = %self.identity, "not leading");
                }
                *was = is_leading;
                true
            });
            let pause = retry_period.min(until_deadline(renewed, renew_deadline));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let was_leading = *leading.borrow();
        leading.send_replace(false);
        if release
            && was_leading
            && let Err(error) = self.release().await
        {
            tracing::warn!(%error, "could not release the lease");
        }
    }
}

/// How long a leader last renewed at `renewed` has before it must step down (a follower: the
/// whole deadline).
fn until_deadline(renewed: Option<Instant>, renew_deadline: Duration) -> Duration {
    match renewed {
        Some(at) => renew_deadline.saturating_sub(at.elapsed()),
        None => renew_deadline,
    }
}
