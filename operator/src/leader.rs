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

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// client-go's default lease duration: how long a Lease holds after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default renew deadline: a leader that has not renewed for this long steps down.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default retry period: how often the Lease is renewed or tried for.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The Lease's default name.
pub const LEASE_NAME: &str = "tandem-operator-leader";

/// What to do about the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or its holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it and it has not expired.
    Wait { holder: String },
}

/// How long a Lease lasts, how long a leader may fail to renew, and how often to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            lease_duration: LEASE_DURATION,
            renew_deadline: RENEW_DEADLINE,
            retry_period: RETRY_PERIOD,
        }
    }
}

impl Timings {
    /// client-go's rules: lease duration > renew deadline > retry period > 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("the retry period must be above zero".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "the renew deadline ({:?}) must be longer than the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// What `me` should do about `lease` at `now`. `duration` counts when the Lease does not say how
/// long it lasts. A Lease without a renew time has expired.
pub fn lease_decision(
    lease: Option<&Lease>,
    me: &str,
    now: Timestamp,
    duration: Duration,
) -> Decision {
    let Some(spec) = lease.and_then(|lease| lease.spec.as_ref()) else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == me {
        return Decision::Renew;
    }
    let lasts_ms = spec
        .lease_duration_seconds
        .map(|seconds| i64::from(seconds) * 1000)
        .unwrap_or_else(|| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
    let expired = match &spec.renew_time {
        Some(MicroTime(renewed)) => {
            now.as_millisecond() >= renewed.as_millisecond().saturating_add(lasts_ms)
        }
        None => true,
    };
    if expired {
        Decision::Acquire
    } else {
        Decision::Wait {
            holder: holder.to_owned(),
        }
    }
}

/// The Lease `me` writes to act on `decision` (`None` for `Wait`): the metadata of `current` (its
/// `resourceVersion` makes the write conditional) with `me` as holder, renewed at `now`.
pub fn next_lease(
    current: Option<&Lease>,
    name: &str,
    decision: &Decision,
    me: &str,
    now: Timestamp,
    duration: Duration,
) -> Option<Lease> {
    let spec = current
        .and_then(|lease| lease.spec.clone())
        .unwrap_or_default();
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let spec = match decision {
        Decision::Wait { .. } => return None,
        Decision::Renew => LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            ..spec
        },
        Decision::Acquire => {
            let previous = spec.holder_identity.as_deref().unwrap_or_default();
            let transitions = spec.lease_transitions.unwrap_or(0);
            LeaseSpec {
                holder_identity: Some(me.to_owned()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(seconds),
                // client-go's count: every change of holder, a released Lease's too.
                lease_transitions: Some(if current.is_some() && previous != me {
                    transitions.saturating_add(1)
                } else {
                    transitions
                }),
                ..spec
            }
        }
    };
    let metadata = match current {
        Some(lease) => lease.metadata.clone(),
        None => ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
    };
    Some(Lease {
        metadata,
        spec: Some(spec),
    })
}

/// The released form of a Lease we hold: no holder, so the next replica acquires it at once.
fn released(lease: &Lease, now: Timestamp) -> Lease {
    let spec = lease.spec.clone().unwrap_or_default();
    Lease {
        metadata: lease.metadata.clone(),
        spec: Some(LeaseSpec {
            holder_identity: None,
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(1),
            ..spec
        }),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("timestamp")
    }

    fn lease(holder: Option<&str>, renewed: Option<i64>, seconds: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(LEASE_NAME.into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: renewed.map(|s| MicroTime(at(s))),
                lease_duration_seconds: seconds,
                lease_transitions: Some(2),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn decisions() {
        let wait = |holder: &str| Decision::Wait {
            holder: holder.into(),
        };
        let empty = Lease {
            metadata: ObjectMeta::default(),
            spec: None,
        };
        let cases: Vec<(&str, Option<Lease>, i64, Decision)> = vec![
            ("no lease", None, 0, Decision::Acquire),
            ("no spec", Some(empty), 0, Decision::Acquire),
            (
                "no holder",
                Some(lease(None, Some(0), Some(15))),
                1,
                Decision::Acquire,
            ),
            (
                "empty holder",
                Some(lease(Some(""), Some(0), Some(15))),
                1,
                Decision::Acquire,
            ),
            (
                "ours, fresh",
                Some(lease(Some("me"), Some(0), Some(15))),
                1,
                Decision::Renew,
            ),
            (
                "ours, expired",
                Some(lease(Some("me"), Some(0), Some(15))),
                99,
                Decision::Renew,
            ),
            (
                "theirs, fresh",
                Some(lease(Some("b"), Some(0), Some(15))),
                14,
                wait("b"),
            ),
            (
                "theirs, at expiry",
                Some(lease(Some("b"), Some(0), Some(15))),
                15,
                Decision::Acquire,
            ),
            (
                "theirs, expired",
                Some(lease(Some("b"), Some(0), Some(15))),
                16,
                Decision::Acquire,
            ),
            (
                "theirs, its own duration",
                Some(lease(Some("b"), Some(0), Some(30))),
                20,
                wait("b"),
            ),
            (
                "theirs, default duration",
                Some(lease(Some("b"), Some(0), None)),
                14,
                wait("b"),
            ),
            (
                "theirs, default expired",
                Some(lease(Some("b"), Some(0), None)),
                15,
                Decision::Acquire,
            ),
            (
                "theirs, never renewed",
                Some(lease(Some("b"), None, Some(15))),
                0,
                Decision::Acquire,
            ),
            (
                "theirs, renewed in our future",
                Some(lease(Some("b"), Some(5), Some(15))),
                0,
                wait("b"),
            ),
        ];
        for (case, lease, now, expected) in cases {
            assert_eq!(
                lease_decision(lease.as_ref(), "me", at(now), DURATION),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn acquiring_takes_over_and_counts_a_transition() {
        let theirs = lease(Some("b"), Some(0), Some(15));
        let next = next_lease(
            Some(&theirs),
            LEASE_NAME,
            &Decision::Acquire,
            "me",
            at(20),
            DURATION,
        )
        .expect("a write");
        assert_eq!(
            next.metadata.resource_version.as_deref(),
            Some("7"),
            "conditional"
        );
        let spec = next.spec.expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(20))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(20))));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn creating_and_renewing_keep_the_transition_count() {
        let created = next_lease(None, LEASE_NAME, &Decision::Acquire, "me", at(0), DURATION)
            .expect("a write");
        assert_eq!(created.metadata.name.as_deref(), Some(LEASE_NAME));
        assert_eq!(created.metadata.resource_version, None);
        let spec = created.spec.expect("spec");
        assert_eq!(spec.lease_transitions, Some(0));
        let ours = lease(Some("me"), Some(0), Some(15));
        let renewed = next_lease(
            Some(&ours),
            LEASE_NAME,
            &Decision::Renew,
            "me",
            at(2),
            DURATION,
        )
        .expect("a write");
        let spec = renewed.spec.expect("spec");
        assert_eq!(spec.renew_time, Some(MicroTime(at(2))));
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(2));
        let wait = Decision::Wait { holder: "b".into() };
        assert_eq!(
            next_lease(Some(&ours), LEASE_NAME, &wait, "me", at(2), DURATION),
            None
        );
    }

    #[test]
    fn a_released_lease_is_acquired_at_once() {
        let ours = lease(Some("me"), Some(0), Some(15));
        let released = released(&ours, at(1));
        assert_eq!(
            lease_decision(Some(&released), "b", at(1), DURATION),
            Decision::Acquire
        );
        assert_eq!(released.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn timings_follow_client_go_rules() {
        assert_eq!(Timings::default().validate(), Ok(()));
        let secs = Duration::from_secs;
        let bad = [
            (secs(15), secs(10), secs(0)),
            (secs(15), secs(2), secs(2)),
            (secs(10), secs(10), secs(2)),
        ];
        for (lease_duration, renew_deadline, retry_period) in bad {
            let timings = Timings {
                lease_duration,
                renew_deadline,
                retry_period,
            };
            assert!(timings.validate().is_err(), "{timings:?}");
        }
    }

    #[test]
    fn identities_differ_per_process_without_pod_name() {
        if std::env::var("POD_NAME").is_err() {
            assert_ne!(default_identity(), default_identity());
        }
    }
}
