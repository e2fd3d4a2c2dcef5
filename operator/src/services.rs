//! The headless `<app-id>-dapr` Service of a Dapr-enabled workload (what `nameresolution.kubernetes`
//! resolves peers through), and the decisions around it, as pure functions: whether a workload is
//! Dapr-enabled and with which app id, the Service it should have, whether the Service that exists
//! is already that (then nothing is written), and who owns a Service both claim.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use tandem_crds::annotations::{is_truthy, keys, ports};

/// The label every `<app-id>-dapr` Service carries; the operator watches Services by it.
pub const SERVICE_LABEL: (&str, &str) = (keys::ENABLED, "true");
/// `<app-id>-dapr` must be a DNS-1123 label.
const MAX_LABEL_LEN: usize = 63;
const SUFFIX: &str = "-dapr";

/// A workload's Dapr identity: its app id and the pod labels its Service selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaprApp {
    pub app_id: String,
    pub selector: BTreeMap<String, String>,
}

/// What a workload's pod template says about Dapr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSpec {
    /// `dapr.io/enabled` absent or not truthy: the workload should have no Service.
    NotEnabled,
    Enabled(DaprApp),
    /// Enabled, but no Service can be made; `reason` is the Warning Event's reason.
    Invalid {
        reason: &'static str,
        message: String,
    },
}

/// Reads a workload's Dapr identity: the pod template's annotations, the app id defaulting to the
/// workload's name, and the workload's `spec.selector.matchLabels`.
pub fn dapr_app(
    workload_name: &str,
    template_annotations: Option<&BTreeMap<String, String>>,
    match_labels: Option<&BTreeMap<String, String>>,
) -> AppSpec {
    let annotation = |key: &str| template_annotations.and_then(|a| a.get(key));
    if !annotation(keys::ENABLED).is_some_and(|v| is_truthy(v)) {
        return AppSpec::NotEnabled;
    }
    let app_id = annotation(keys::APP_ID)
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())
        .unwrap_or(workload_name);
    let name = service_name(app_id);
    if !is_dns_label(&name) {
        return AppSpec::Invalid {
            reason: "InvalidAppId",
            message: format!(
                "app id {app_id:?} does not make a valid Service name {name:?} (lowercase \
                 letters, digits and '-', at most {} characters); set {} to one that does",
                MAX_LABEL_LEN - SUFFIX.len(),
                keys::APP_ID
            ),
        };
    }
    let selector = match_labels.cloned().unwrap_or_default();
    if selector.is_empty() {
        return AppSpec::Invalid {
            reason: "NoMatchLabels",
            message: "spec.selector has no matchLabels, which the headless Service needs as its \
                      selector; add matchLabels"
                .to_owned(),
        };
    }
    AppSpec::Enabled(DaprApp {
        app_id: app_id.to_owned(),
        selector,
    })
}

/// `<app-id>-dapr`.
pub fn service_name(app_id: &str) -> String {
    format!("{app_id}{SUFFIX}")
}

fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    (1..=MAX_LABEL_LEN).contains(&bytes.len())
        && bytes.iter().all(allowed)
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The Service `app` should have, owned by its workload (`owner` with `controller: true`).
pub fn desired_service(app: &DaprApp, namespace: &str, owner: OwnerReference) -> Service {
    let port = |name: &str, port: u16, target: u16, protocol: &str| ServicePort {
        name: Some(name.to_owned()),
        port: port.into(),
        target_port: Some(IntOrString::Int(target.into())),
        protocol: Some("TCP".to_owned()),
        app_protocol: Some(protocol.to_owned()),
        ..ServicePort::default()
    };
    Service {
        metadata: ObjectMeta {
            name: Some(service_name(&app.app_id)),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                SERVICE_LABEL.0.to_owned(),
                SERVICE_LABEL.1.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                keys::APP_ID.to_owned(),
                app.app_id.clone(),
            )])),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(app.selector.clone()),
            ports: Some(vec![
                port("dapr-http", 80, ports::HTTP, "http"),
                port("dapr-grpc", ports::GRPC, ports::GRPC, "grpc"),
                port("dapr-internal", ports::INTERNAL, ports::INTERNAL, "grpc"),
                port("dapr-metrics", ports::METRICS, ports::METRICS, "http"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// What to do about a workload's Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    /// Create it, or bring the one this workload owns up to date (server-side apply).
    Apply,
    /// The one this workload owns is already as desired: write nothing.
    UpToDate,
    /// Another owner (or none) holds the name; it keeps it. `holder` says who, for the Event.
    Conflict { holder: String },
}

/// Decides between applying, leaving alone, and reporting a conflict.
pub fn service_action(
    desired: &Service,
    existing: Option<&Service>,
    owner_uid: &str,
) -> ServiceAction {
    let Some(existing) = existing else {
        return ServiceAction::Apply;
    };
    match controller_of(existing) {
        Some(owner) if owner.uid == owner_uid => {
            if satisfies(existing, desired) {
                ServiceAction::UpToDate
            } else {
                ServiceAction::Apply
            }
        }
        Some(owner) => ServiceAction::Conflict {
            holder: format!("{} {:?}", owner.kind, owner.name),
        },
        None => ServiceAction::Conflict {
            holder: "no workload (it was created by someone else)".to_owned(),
        },
    }
}

/// The Services (by name) among `services` that the workload `owner_uid` controls but should not
/// have: all of them when it is not Dapr-enabled, the ones not called `keep` when it is (its app
/// id changed).
pub fn stale_services<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    owner_uid: &str,
    keep: Option<&str>,
) -> Vec<&'a str> {
    services
        .into_iter()
        .filter(|s| controller_of(s).is_some_and(|o| o.uid == owner_uid))
        .filter_map(|s| s.metadata.name.as_deref())
        .filter(|name| Some(*name) != keep)
        .collect()
}

/// The app id a labelled Service is for: its `dapr.io/app-id` annotation, else its name without
/// `-dapr` (the `app_id` label of Dapr's `dapr_operator_service_*` metrics).
pub fn service_app_id(service: &Service) -> String {
    let annotated = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::APP_ID))
        .filter(|id| !id.is_empty());
    let name = service.metadata.name.as_deref().unwrap_or_default();
    annotated
        .map(String::as_str)
        .unwrap_or_else(|| name.strip_suffix(SUFFIX).unwrap_or(name))
        .to_owned()
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(service: &Service) -> Option<&OwnerReference> {
    let owners = service.metadata.owner_references.iter().flatten();
    owners.into_iter().find(|o| o.controller == Some(true))
}

/// Whether `existing` already has everything `desired` sets (fields others added do not count;
/// the selector must match exactly, since a stale extra key would select no pods).
fn satisfies(existing: &Service, desired: &Service) -> bool {
    let contains = |have: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        let want = want.iter().flatten();
        want.into_iter()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let (have, want) = (&existing.metadata, &desired.metadata);
    let (Some(have_spec), Some(want_spec)) = (&existing.spec, &desired.spec) else {
        return false;
    };
    let have_ports = have_spec.ports.as_deref().unwrap_or_default();
    let ports_present = want_spec.ports.iter().flatten().all(|want| {
        have_ports.iter().any(|have| {
            have.name == want.name
                && have.port == want.port
                && have.target_port == want.target_port
                && have.protocol == want.protocol
                && have.app_protocol == want.app_protocol
        })
    });
    contains(&have.labels, &want.labels)
        && contains(&have.annotations, &want.annotations)
        && have_spec.cluster_ip == want_spec.cluster_ip
        && have_spec.selector == want_spec.selector
        && ports_present
}

#[cfg(test)]
mod tests;
