//! From a verdict to a `status`, and whether that status needs writing. Every dapr.io kind carries
//! one condition the operator owns, `Ready`; its reason says which rule decided it and its message
//! says what to do about it. These functions are pure so the steady-state rule ("write only when
//! something changed") is tested without a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tandem_crds::Status;

/// The condition type the operator owns.
pub const READY: &str = "Ready";

/// Why a resource is or is not ready: the `reason` of its `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every rule passed.
    Valid,
    /// Component: `spec.type` is not in the catalogue.
    UnknownType,
    /// Component: `spec.version` is not one the type supports.
    UnsupportedVersion,
    /// Component: a required metadata field is missing.
    MissingMetadata,
    /// Component: a metadata field the type does not know.
    UnknownMetadata,
    /// Component: a `secretKeyRef` names a Secret that does not exist.
    SecretNotFound,
    /// Component: a `secretKeyRef` names a key its Secret does not have.
    SecretKeyNotFound,
    /// Subscription: `pubsubname` names no Component in the namespace.
    PubsubNotFound,
    /// Subscription: `pubsubname` names a Component that is not a `pubsub.*`.
    NotAPubsub,
    /// Subscription: a routing rule's `match` is not valid CEL.
    InvalidRoute,
    /// Subscription: no route at all.
    NoRoute,
    /// Configuration: `tracing.samplingRate` is not a number in [0, 1].
    InvalidSamplingRate,
    /// Configuration: an access-control action is not `allow` or `deny`.
    InvalidAccessControl,
    /// Configuration: a secret scope's `defaultAccess` is not `allow` or `deny`.
    InvalidSecretScope,
    /// Configuration: a `spec.api` rule has no name or a protocol other than `http`/`grpc`.
    InvalidApi,
}

impl Reason {
    /// The condition's `reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Valid => "Valid",
            Reason::UnknownType => "UnknownType",
            Reason::UnsupportedVersion => "UnsupportedVersion",
            Reason::MissingMetadata => "MissingMetadata",
            Reason::UnknownMetadata => "UnknownMetadata",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyNotFound => "SecretKeyNotFound",
            Reason::PubsubNotFound => "PubsubNotFound",
            Reason::NotAPubsub => "NotAPubsub",
            Reason::InvalidRoute => "InvalidRoute",
            Reason::NoRoute => "NoRoute",
            Reason::InvalidSamplingRate => "InvalidSamplingRate",
            Reason::InvalidAccessControl => "InvalidAccessControl",
            Reason::InvalidSecretScope => "InvalidSecretScope",
            Reason::InvalidApi => "InvalidApi",
        }
    }
}

/// What the rules decided about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    /// For a person: what was checked, or what is wrong and how to fix it.
    pub message: String,
}

impl Verdict {
    /// Every rule passed; `message` says what was checked.
    pub fn valid(message: impl Into<String>) -> Verdict {
        Verdict {
            reason: Reason::Valid,
            message: message.into(),
        }
    }

    /// A rule failed.
    pub fn invalid(reason: Reason, message: impl Into<String>) -> Verdict {
        Verdict {
            reason,
            message: message.into(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.reason == Reason::Valid
    }
}

/// The status the operator wants: `observedGeneration` and the `Ready` condition from `verdict`.
/// `lastTransitionTime` stays as it is while the condition's status does not change, and is
/// `now` when it does (or when there was none).
pub fn desired_status(
    current: Option<&Status>,
    verdict: &Verdict,
    generation: Option<i64>,
    now: Time,
) -> Status {
    let status = if verdict.is_ready() { "True" } else { "False" };
    let last_transition_time = current
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .filter(|c| c.status == status)
        .map_or(now, |c| c.last_transition_time.clone());
    Status {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: READY.to_owned(),
            status: status.to_owned(),
            reason: verdict.reason.as_str().to_owned(),
            message: verdict.message.clone(),
            observed_generation: generation,
            last_transition_time,
        }],
    }
}

/// Whether `desired` differs from `current` in anything the operator owns: `observedGeneration`
/// or one of its conditions, `lastTransitionTime` aside. Conditions of other types (other
/// controllers') do not count.
pub fn needs_write(current: Option<&Status>, desired: &Status) -> bool {
    let Some(current) = current else {
        return true;
    };
    if current.observed_generation != desired.observed_generation {
        return true;
    }
    desired.conditions.iter().any(|want| {
        let have = current.conditions.iter().find(|c| c.type_ == want.type_);
        !have.is_some_and(|have| same_ignoring_time(have, want))
    })
}

/// Whether the verdict itself changes (status, reason or message of `Ready`), not just the
/// generation it describes: the moments worth an Event.
pub fn ready_changed(current: Option<&Status>, desired: &Status) -> bool {
    let ready = |s: &Status| s.conditions.iter().find(|c| c.type_ == READY).cloned();
    let verdict = |c: Condition| (c.status, c.reason, c.message);
    current.and_then(ready).map(verdict) != ready(desired).map(verdict)
}

fn same_ignoring_time(a: &Condition, b: &Condition) -> bool {
    a.type_ == b.type_
        && a.status == b.status
        && a.reason == b.reason
        && a.message == b.message
        && a.observed_generation == b.observed_generation
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn bad(message: &str) -> Verdict {
        Verdict::invalid(Reason::MissingMetadata, message)
    }

    #[test]
    fn a_first_status_is_written_with_now() {
        let desired = desired_status(None, &Verdict::valid("ok"), Some(3), at(100));
        assert_eq!(desired.observed_generation, Some(3));
        let ready = &desired.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "True", "Valid")
        );
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(ready.last_transition_time, at(100));
        assert!(needs_write(None, &desired));
        assert!(ready_changed(None, &desired));
    }

    #[test]
    fn the_same_verdict_later_changes_nothing() {
        let first = desired_status(None, &bad("x missing"), Some(1), at(100));
        let again = desired_status(Some(&first), &bad("x missing"), Some(1), at(500));
        assert_eq!(again, first, "lastTransitionTime kept");
        assert!(!needs_write(Some(&first), &again));
        assert!(!ready_changed(Some(&first), &again));
    }

    #[test]
    fn a_new_message_with_the_same_status_keeps_the_transition_time_but_is_written() {
        let first = desired_status(None, &bad("x missing"), Some(1), at(100));
        let next = desired_status(Some(&first), &bad("y missing"), Some(1), at(500));
        assert_eq!(next.conditions[0].last_transition_time, at(100));
        assert!(needs_write(Some(&first), &next));
        assert!(ready_changed(Some(&first), &next));
    }

    #[test]
    fn a_flip_moves_the_transition_time() {
        let first = desired_status(None, &bad("x missing"), Some(1), at(100));
        let next = desired_status(Some(&first), &Verdict::valid("ok"), Some(2), at(500));
        assert_eq!(next.conditions[0].last_transition_time, at(500));
        assert!(needs_write(Some(&first), &next));
    }

    #[test]
    fn a_new_generation_alone_is_written_but_is_no_event() {
        let first = desired_status(None, &Verdict::valid("ok"), Some(1), at(100));
        let mut stale = first.clone();
        stale.observed_generation = Some(0);
        assert!(needs_write(Some(&stale), &first));
        let next = desired_status(Some(&first), &Verdict::valid("ok"), Some(2), at(500));
        assert!(
            needs_write(Some(&first), &next),
            "condition generation moved"
        );
        assert!(
            !ready_changed(Some(&first), &next),
            "same verdict, no event"
        );
    }

    #[test]
    fn transition_time_differences_and_foreign_conditions_are_not_writes() {
        let desired = desired_status(None, &Verdict::valid("ok"), Some(1), at(100));
        let mut current = desired.clone();
        current.conditions[0].last_transition_time = at(42);
        current.conditions.push(Condition {
            type_: "Scoped".into(),
            status: "False".into(),
            reason: "Other".into(),
            message: "another controller's".into(),
            observed_generation: None,
            last_transition_time: at(1),
        });
        assert!(!needs_write(Some(&current), &desired));
        let mut other_reason = current.clone();
        other_reason.conditions[0].reason = "Old".into();
        assert!(needs_write(Some(&other_reason), &desired));
        let mut no_ready = current;
        no_ready.conditions.remove(0);
        assert!(needs_write(Some(&no_ready), &desired));
        assert!(ready_changed(Some(&no_ready), &desired));
    }
}
