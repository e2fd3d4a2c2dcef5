//! Kubernetes mode, put together: identity from the env the injector sets (`NAMESPACE`,
//! `POD_NAME`), what to load from the operator ([`crate::control_plane`]), peers through cluster
//! DNS ([`crate::resolve::dns`]), and [`follow`], which applies each change the operator streams:
//! a Component added, changed or removed takes effect without a restart. Requests already running
//! finish on the component they started with; it is closed after the grace period.

use crate::cli::SidecarArgs;
use crate::components::manifest::{self, Manifest, SubscriptionManifest};
use crate::components::plan::{Plan, PlanContext, Planned, plan_resources};
use crate::components::registry::ComponentInfo;
use crate::components::secrets;
use crate::components::state::KeyPrefix;
use crate::control_plane::{ControlPlane, ControlPlaneTrust};
use crate::reload::{Reloader, unchanged};
use crate::resolve::dns::{self, DnsResolver, Nameservers};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tandem_crds::annotations::env;
use tandem_crds::control_plane::Resources;
use tokio::sync::watch;

/// How long start-up waits for the operator.
pub const OPERATOR_WAIT: Duration = Duration::from_secs(30);

/// Who this sidecar is in the cluster.
#[derive(Debug, Clone)]
pub struct Identity {
    pub namespace: String,
    pub pod: String,
}

impl Identity {
    /// From the downward-API env the injector sets.
    pub fn from_env() -> Result<Identity, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("--mode kubernetes needs the env var {name} (set by the injector from the downward API)"))
        };
        Ok(Identity {
            namespace: var(env::NAMESPACE)?,
            pod: var(env::POD_NAME)?,
        })
    }
}

/// The operator client for this sidecar: over TLS verified against the trust anchors when the
/// injector passed them, else plain HTTP (said once, loudly).
pub fn control_plane(args: &SidecarArgs, identity: &Identity) -> Result<ControlPlane, String> {
    let address = args.control_plane_address.clone().unwrap_or_default();
    let trust = ControlPlaneTrust::from_args(&args.control_plane_trust)?;
    match &trust {
        Some(trust) => {
            tracing::info!(%address, operator = %trust.operator(), "the control plane is verified: TLS against the trust anchors")
        }
        None => {
            tracing::warn!(%address, "no trust anchors (DAPR_TRUST_ANCHORS): the control plane is NOT verified, plain HTTP")
        }
    }
    let configuration = args
        .config
        .as_ref()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty());
    ControlPlane::new(
        address,
        args.control_plane_token_file.clone(),
        identity.namespace.clone(),
        identity.pod.clone(),
        args.app_id.clone(),
        configuration,
        trust,
    )
}

/// Where `resources` came from, for messages: `operator:<namespace>/<name>`.
fn origin(namespace: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("operator:{namespace}/{name}"))
}

/// The operator's resources as manifests the planner reads.
pub fn manifests(resources: &Resources, namespace: &str) -> manifest::Resources {
    manifest::Resources {
        components: resources
            .components
            .iter()
            .map(|component| Manifest {
                file: origin(namespace, component.name()),
                component: component.clone(),
            })
            .collect(),
        subscriptions: resources
            .subscriptions
            .iter()
            .map(|subscription| SubscriptionManifest {
                file: origin(namespace, subscription.name()),
                subscription: subscription.clone(),
            })
            .collect(),
    }
}

/// Adds the built-in `kubernetes` secret store to `plan`, unless a component already has its name
/// (Dapr's rule); returns whether it did.
pub fn with_builtin_secret_store(plan: &mut Plan, control_plane: &ControlPlane) -> bool {
    if plan
        .components
        .iter()
        .any(|p| p.info.name == secrets::kubernetes::NAME)
    {
        return false;
    }
    plan.components.push(Planned {
        info: ComponentInfo {
            name: secrets::kubernetes::NAME.to_owned(),
            type_: secrets::kubernetes::TYPE.to_owned(),
            version: "v1".to_owned(),
            file: PathBuf::from("<built-in>"),
        },
        config: Arc::new(secrets::kubernetes::KubernetesSettings(
            control_plane.clone(),
        )),
        init_timeout: Duration::from_secs(5),
        ignore_errors: false,
        key_prefix: KeyPrefix::AppId,
        actor_state_store: false,
        binding: None,
    });
    true
}

/// The resolver for peers: cluster DNS, the domain from the flag, else resolv.conf, else
/// `cluster.local`.
pub fn resolver(args: &SidecarArgs, identity: &Identity) -> Result<DnsResolver, String> {
    let resolv_conf = std::fs::read_to_string(&args.resolv_conf).unwrap_or_default();
    let cluster_domain = args
        .kubernetes_cluster_domain
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| dns::cluster_domain_from_resolv_conf(&resolv_conf))
        .unwrap_or_else(|| dns::DEFAULT_CLUSTER_DOMAIN.to_owned());
    let nameservers = match args.dns_server {
        Some(server) => Nameservers::Server(server),
        None if resolv_conf.is_empty() => {
            return Err(format!(
                "--resolv-conf {}: cannot read the resolver configuration",
                args.resolv_conf.display()
            ));
        }
        None => Nameservers::ResolvConf(resolv_conf),
    };
    DnsResolver::new(
        &nameservers,
        &identity.namespace,
        &cluster_domain,
        args.dapr_internal_grpc_port,
    )
}

/// Applies each set the operator sends (components and subscriptions) until the channel closes. A set that does not plan (a bad
/// component without `ignoreErrors`) or whose new components do not initialise is not applied:
/// the sidecar keeps what works and says why.
pub async fn follow(
    reloader: Reloader,
    ctx: PlanContext,
    control_plane: ControlPlane,
    mut loaded: Resources,
    mut updates: watch::Receiver<Resources>,
) {
    let sidecar = reloader.sidecar().clone();
    let namespace = ctx.namespace.clone().unwrap_or_default();
    while updates.changed().await.is_ok() {
        let resources = updates.borrow_and_update().clone();
        if resources.configuration != loaded.configuration {
            // Secret scopes, features and tracing apply to the next request.
            let spec = resources.configuration.as_ref().map(|c| c.spec.clone());
            crate::traces::apply_spec(spec.as_ref().and_then(|s| s.tracing.as_ref()));
            sidecar.replace_config(spec.unwrap_or_default());
            tracing::info!("configuration from the operator applied");
            loaded.configuration = resources.configuration.clone();
        }
        if resources.components == loaded.components
            && resources.subscriptions == loaded.subscriptions
        {
            continue;
        }
        let (mut plan, prebuilt) = match plan_resources(&ctx, manifests(&resources, &namespace)) {
            Ok(planned) => planned,
            Err(error) => {
                tracing::error!(%error, "components from the operator not applied; keeping the current ones");
                continue;
            }
        };
        let mut keep = unchanged(&loaded.components, &resources.components);
        if with_builtin_secret_store(&mut plan, &control_plane) {
            keep.insert(secrets::kubernetes::NAME.to_owned());
        }
        match reloader.apply(plan, prebuilt, &keep).await {
            Ok(applied) => tracing::info!(
                components = resources.components.len(),
                subscriptions = resources.subscriptions.len(),
                kept = applied.kept,
                retired = applied.retired,
                "components and subscriptions from the operator applied"
            ),
            Err(error) => {
                tracing::error!(%error, "keeping the current components");
                continue;
            }
        }
        loaded = resources;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crds::Component;

    #[test]
    fn operator_resources_become_manifests_named_by_origin() {
        let resources = Resources {
            components: vec![Component::test("cache", "state.in-memory")],
            ..Resources::default()
        };
        let read = manifests(&resources, "shop");
        assert_eq!(read.components.len(), 1);
        assert_eq!(
            read.components[0].file,
            PathBuf::from("operator:shop/cache")
        );
    }
}
