//! Start-up configuration: every flag, file and environment variable is read and validated here,
//! before any port is bound; a bad one stops start-up with exit 64 naming it. Kubernetes mode
//! also fetches the first set of resources from the operator here.

use crate::cli::{EX_USAGE, Mode, SidecarArgs};
use crate::components::plan::plan_resources;
use crate::components::secrets::SecretStore;
use crate::components::{Plan, PlanContext};
use crate::control_plane::ControlPlane;
use crate::kubernetes;
use http::HeaderValue;
use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tandem_crds::ConfigurationSpec;
use tandem_crds::annotations::env;
use tandem_crds::control_plane::Resources;

pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tandem-sidecar: {message}");
    ExitCode::from(EX_USAGE)
}

/// A `--config` file: a `Configuration` manifest of which only `spec` matters here. Like daprd, a
/// file without `metadata` or `spec` still loads (`tandem_crds::Configuration` requires both, as
/// the apiserver does).
#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    spec: ConfigurationSpec,
}

fn read_config(path: &std::path::Path) -> Result<ConfigurationSpec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--config {}: cannot read: {e}", path.display()))?;
    let config: ConfigFile = serde_norway::from_str(&text)
        .map_err(|e| format!("--config {}: invalid Configuration: {e}", path.display()))?;
    if let Some(rate) = config
        .spec
        .tracing
        .as_ref()
        .and_then(|t| t.sampling_rate.as_deref())
    {
        match rate.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => {}
            _ => {
                return Err(format!(
                    "--config {}: spec.tracing.samplingRate {rate:?} must be between 0 and 1",
                    path.display()
                ));
            }
        }
    }
    Ok(config.spec)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment the sidecar reads, validated.
pub struct Env {
    /// `NAMESPACE`.
    pub namespace: Option<String>,
    /// `DAPR_API_TOKEN`: what apps must present.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: what the sidecar presents to its own app.
    pub app_token: Option<HeaderValue>,
    /// Where the internal port listens: loopback standalone; the pod's IP (`POD_IP`) or every
    /// address in Kubernetes.
    pub internal_ip: IpAddr,
}

impl Env {
    fn read(kubernetes: bool) -> Result<Env, String> {
        let app_token = match non_empty_env(env::APP_API_TOKEN) {
            Some(t) => Some(
                HeaderValue::from_str(&t)
                    .map_err(|_| format!("{}: not a valid header value", env::APP_API_TOKEN))?,
            ),
            None => None,
        };
        // Standalone peers are on this machine (the registry only advertises 127.0.0.1), and the
        // internal port reaches the app with its APP_API_TOKEN: keep it off the network. In
        // Kubernetes, peers are other pods: it listens on the pod's IP when the injector passed
        // it, else everywhere.
        let internal_ip = if kubernetes {
            non_empty_env(env::POD_IP)
                .map(|ip| {
                    ip.parse()
                        .map_err(|_| format!("{}: {ip:?} is not an IP address", env::POD_IP))
                })
                .transpose()?
                .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        Ok(Env {
            namespace: non_empty_env(env::NAMESPACE),
            api_token: non_empty_env(env::DAPR_API_TOKEN),
            app_token,
            internal_ip,
        })
    }
}

/// Everything checked before binding.
pub struct Prepared {
    pub args: SidecarArgs,
    pub plan: Plan,
    pub prebuilt: HashMap<String, Arc<dyn SecretStore>>,
    pub config: ConfigurationSpec,
    /// What `spec.tracing` and the `OTEL_EXPORTER_OTLP_*` variables ask for.
    pub traces: crate::traces::settings::TraceSettings,
    /// What `spec.metric` asks for.
    pub metrics: crate::metrics::settings::MetricSettings,
    pub env: Env,
    /// Standalone mode: where the components came from, to follow changes.
    pub standalone: Option<PlanContext>,
    pub kubernetes: Option<Kubernetes>,
}

/// Kubernetes mode: who this is, the operator, and what it sent first.
pub struct Kubernetes {
    pub identity: kubernetes::Identity,
    pub control_plane: ControlPlane,
    pub first: Resources,
    pub ctx: PlanContext,
}

/// Kubernetes mode: identity from the env, then the first set from the operator. A missing env
/// var is a usage error; an operator that does not answer in time (or refuses) stops start-up.
pub async fn connect(
    args: &SidecarArgs,
) -> Result<Option<(kubernetes::Identity, ControlPlane, Resources)>, ExitCode> {
    if args.mode != Mode::Kubernetes {
        return Ok(None);
    }
    let identity = kubernetes::Identity::from_env().map_err(usage_error)?;
    let control_plane = kubernetes::control_plane(args, &identity).map_err(usage_error)?;
    match control_plane.fetch_initial(kubernetes::OPERATOR_WAIT).await {
        Ok(first) => {
            tracing::info!(
                components = first.components.len(),
                subscriptions = first.subscriptions.len(),
                "resources from the operator"
            );
            Ok(Some((identity, control_plane, first)))
        }
        Err(error) => {
            tracing::error!(%error, "cannot get components from the operator");
            eprintln!("tandem-sidecar: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

pub fn prepare(
    args: SidecarArgs,
    from_operator: Option<(kubernetes::Identity, ControlPlane, Resources)>,
) -> Result<Prepared, String> {
    let config = match (&from_operator, &args.config) {
        (Some((_, _, first)), _) => first
            .configuration
            .as_ref()
            .map(|c| c.spec.clone())
            .unwrap_or_default(),
        (None, Some(path)) => read_config(path)?,
        (None, None) => ConfigurationSpec::default(),
    };
    let env = Env::read(from_operator.is_some())?;
    let traces = crate::traces::settings::trace_settings(config.tracing.as_ref(), &non_empty_env)
        .map_err(|e| e.to_string())?;
    let metrics = crate::metrics::settings::metric_settings(config.metric.as_ref())
        .map_err(|e| e.to_string())?;
    let ctx = PlanContext {
        app_id: args.app_id.clone(),
        namespace: env.namespace.clone(),
        pod_name: non_empty_env(env::POD_NAME),
        resources_paths: args.resources_path.clone(),
        data_dir: args.data_dir(),
        secrets_from_operator: from_operator.is_some(),
    };
    let (plan, prebuilt, standalone, kubernetes) = match from_operator {
        None => {
            let (plan, prebuilt) =
                crate::components::plan::plan(&ctx).map_err(|e| e.to_string())?;
            (plan, prebuilt, Some(ctx), None)
        }
        Some((identity, control_plane, first)) => {
            let manifests = kubernetes::manifests(&first, &identity.namespace);
            let (mut plan, prebuilt) =
                plan_resources(&ctx, manifests).map_err(|e| e.to_string())?;
            kubernetes::with_builtin_secret_store(&mut plan, &control_plane);
            let mode = Kubernetes {
                identity,
                control_plane,
                first,
                ctx,
            };
            (plan, prebuilt, None, Some(mode))
        }
    };
    Ok(Prepared {
        args,
        plan,
        prebuilt,
        config,
        traces,
        metrics,
        env,
        standalone,
        kubernetes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ConfigurationSpec, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).expect("write config");
        read_config(&path)
    }

    #[test]
    fn reads_a_configuration_manifest_and_tolerates_missing_metadata_or_spec() {
        let full = read("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: c}\nspec: {tracing: {samplingRate: '0.5'}, metrics: {enabled: true}}\n")
            .expect("a full manifest loads");
        assert_eq!(
            full.tracing.and_then(|t| t.sampling_rate).as_deref(),
            Some("0.5")
        );
        assert_eq!(full.metric, Some(serde_json::json!({"enabled": true})));
        let bare = read("spec: {features: [{name: Resiliency, enabled: true}]}\n")
            .expect("no metadata is fine");
        assert_eq!(bare.features[0].name, "Resiliency");
        assert_eq!(
            read("kind: Configuration\n").expect("no spec is fine"),
            ConfigurationSpec::default()
        );
        let bad = read("spec: {tracing: {samplingRate: '2'}}\n").expect_err("out of range");
        assert!(
            bad.contains("samplingRate \"2\" must be between 0 and 1"),
            "{bad}"
        );
    }
}
