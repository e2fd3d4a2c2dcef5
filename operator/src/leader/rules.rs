//! The pure rules of leader election: who may hold the Lease now, and the Lease to write.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;

/// client-go's default lease duration: how long a Lease holds after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default renew deadline: a leader that has not renewed for this long steps down.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default retry period: how often the Lease is renewed or tried for.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The Lease's default name.
pub const LEASE_NAME: &str = "tandem-operator";

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
pub(super) fn released(lease: &Lease, now: Timestamp) -> Lease {
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
            assert_ne!(
                super::super::default_identity(),
                super::super::default_identity()
            );
        }
    }
}
