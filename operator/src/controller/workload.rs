//! The `<app-id>-dapr` Service of Deployments and StatefulSets: applied (server-side, owned by the
//! workload) when the pod template is Dapr-enabled and the Service is missing or out of date,
//! deleted when the workload stops being Dapr-enabled or changes its app id, and left to its
//! current owner, with a Warning Event on the other workload, when two claim one app id.

use super::{Context, FIELD_MANAGER, Labelled, RESYNC, Scope, describe, namespace_of};
use crate::error::{Error, Result};
use crate::metrics::ServiceChange;
use crate::services::{
    AppSpec, SERVICE_LABEL, ServiceAction, dapr_app, desired_service, service_action,
    service_app_id, stale_services,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// How soon a workload that lost an app-id conflict looks again (the holder may have gone).
const CONFLICT_RETRY: Duration = Duration::from_secs(30);

/// A workload kind with a pod template and a label selector.
pub(crate) trait Workload:
    Labelled
    + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn match_labels(&self) -> Option<&BTreeMap<String, String>>;
}

impl Labelled for Deployment {
    const LABEL: &'static str = "deployment";
}

impl Workload for Deployment {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.as_ref()?.selector.match_labels.as_ref()
    }
}

impl Labelled for StatefulSet {
    const LABEL: &'static str = "statefulset";
}

impl Workload for StatefulSet {
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.as_ref()?.selector.match_labels.as_ref()
    }
}

/// The watch of the labelled `<app-id>-dapr` Services.
pub(crate) fn labelled_services() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", SERVICE_LABEL.0, SERVICE_LABEL.1))
}

/// Workloads of kind `W`, and the labelled Services they own.
pub(crate) fn controller<W: Workload>(client: &kube::Client, scope: &Scope) -> Controller<W> {
    Controller::new(scope.api::<W>(client), watcher::Config::default())
        .owns(scope.api::<Service>(client), labelled_services())
}

/// `reconcile` for a workload kind.
#[tracing::instrument(skip_all, fields(kind = W::LABEL, object = %describe(workload.as_ref())))]
pub(crate) async fn reconcile<W: Workload>(workload: Arc<W>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconcile_measured(
        W::LABEL,
        workload.as_ref(),
        reconcile_service(workload.as_ref(), &ctx),
    )
    .await
}

async fn reconcile_service<W: Workload>(workload: &W, ctx: &Context) -> Result<Action> {
    let namespace = namespace_of(workload)?;
    let uid = workload.uid().ok_or_else(|| Error::Incomplete {
        object: describe(workload),
        field: "uid",
    })?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let annotations = workload
        .template()
        .and_then(|t| t.metadata.as_ref()?.annotations.as_ref());
    let spec = dapr_app(&workload.name_any(), annotations, workload.match_labels());
    let mut keep = None;
    let mut next = Action::requeue(RESYNC);
    match spec {
        AppSpec::NotEnabled => {}
        AppSpec::Invalid { reason, message } => {
            ctx.warn_once(&workload.object_ref(&()), reason, message)
                .await?;
        }
        AppSpec::Enabled(app) => {
            let owner = workload
                .controller_owner_ref(&())
                .ok_or_else(|| Error::Incomplete {
                    object: describe(workload),
                    field: "name or uid",
                })?;
            let desired = desired_service(&app, &namespace, owner);
            let name = desired.metadata.name.clone().unwrap_or_default();
            let _claim = ctx.claim(&namespace, &name).await;
            let cached = ctx
                .services
                .get(&ObjectRef::new(&name).within(&namespace))
                .map(|s| s.as_ref().clone());
            // Not in the cache: it may be too new for it; read it before creating it.
            let existing = match cached {
                Some(service) => Some(service),
                None => services
                    .get_opt(&name)
                    .await
                    .map_err(Error::api(format!("get Service {namespace}/{name}")))?,
            };
            match service_action(&desired, existing.as_ref(), &uid) {
                ServiceAction::UpToDate => {}
                ServiceAction::Apply => {
                    let params = PatchParams::apply(FIELD_MANAGER).force();
                    services
                        .patch(&name, &params, &Patch::Apply(&desired))
                        .await
                        .map_err(Error::api(format!("apply Service {namespace}/{name}")))?;
                    let change = match existing {
                        Some(_) => ServiceChange::Updated,
                        None => ServiceChange::Created,
                    };
                    ctx.metrics.service_changed(change, &app.app_id);
                    tracing::info!(service = %name, ?change, "Service applied");
                }
                ServiceAction::Conflict { holder } => {
                    let note = format!(
                        "app id {:?} is already used in this namespace: Service {name:?} belongs \
                         to {holder}, which keeps it; give this workload another dapr.io/app-id",
                        app.app_id
                    );
                    ctx.warn_once(&workload.object_ref(&()), "AppIdConflict", note)
                        .await?;
                    next = Action::requeue(CONFLICT_RETRY);
                }
            }
            keep = Some(name);
        }
    }
    delete_stale(ctx, &services, &namespace, &uid, keep.as_deref()).await?;
    Ok(next)
}

/// Deletes the labelled Services this workload controls other than `keep` (as the watch has them;
/// one too new for it is found on the next look).
async fn delete_stale(
    ctx: &Context,
    services: &Api<Service>,
    namespace: &str,
    owner_uid: &str,
    keep: Option<&str>,
) -> Result<()> {
    let labelled: Vec<Service> = ctx
        .services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .map(|s| s.as_ref().clone())
        .collect();
    for name in stale_services(&labelled, owner_uid, keep) {
        let stale = labelled
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name));
        let uid = stale.and_then(|s| s.metadata.uid.clone());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match services.delete(name, &params).await {
            Ok(_) => {
                let app_id = stale.map(service_app_id).unwrap_or_default();
                ctx.metrics.service_changed(ServiceChange::Deleted, &app_id);
                tracing::info!(service = name, "Service deleted");
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => {
                return Err(Error::api(format!("delete Service {namespace}/{name}"))(
                    error,
                ));
            }
        }
    }
    Ok(())
}
