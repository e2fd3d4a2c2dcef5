//! The `<app-id>-dapr` Service of Deployments and StatefulSets: applied (server-side, owned by the
//! workload) when the pod template is Dapr-enabled and the Service is missing or out of date,
//! deleted when the workload stops being Dapr-enabled or changes its app id, and left to its
//! current owner, with a Warning Event on the other workload, when two claim one app id.

use super::{Context, FIELD_MANAGER, Labelled, RESYNC, Scope, describe, namespace_of};
use crate::cache::{Shared, TrimmedWorkload, list_from_cache};
use crate::error::{Error, Result};
use crate::metrics::ServiceChange;
use crate::services::{
    AppSpec, SERVICE_LABEL, ServiceAction, dapr_app, desired_service, service_action,
    service_app_id, stale_services,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// How soon a workload that lost an app-id conflict looks again (the holder may have gone).
const CONFLICT_RETRY: Duration = Duration::from_secs(30);

/// A workload kind (Deployment, StatefulSet): the operator caches and reconciles its
/// [`TrimmedWorkload`].
pub(crate) trait Workload:
    Labelled + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + 'static
{
}

impl Labelled for Deployment {
    const LABEL: &'static str = "deployment";
}

impl Workload for Deployment {}

impl Labelled for StatefulSet {
    const LABEL: &'static str = "statefulset";
}

impl Workload for StatefulSet {}

impl<W: Labelled> Labelled for TrimmedWorkload<W> {
    const LABEL: &'static str = W::LABEL;
}

/// The watch of the labelled `<app-id>-dapr` Services.
pub(crate) fn labelled_services() -> watcher::Config {
    list_from_cache().labels(&format!("{}={}", SERVICE_LABEL.0, SERVICE_LABEL.1))
}

/// Workloads of kind `W` (trimmed as they are decoded), and the labelled Services they own.
pub(crate) fn controller<W: Workload>(
    client: &kube::Client,
    scope: &Scope,
    services: &Shared<Service>,
) -> Controller<TrimmedWorkload<W>> {
    let (store, writer) = reflector::store();
    let workloads = watcher(scope.api::<TrimmedWorkload<W>>(client), list_from_cache());
    let workloads = reflector::reflector(writer, workloads).applied_objects();
    Controller::for_stream(workloads, store).owns_shared_stream(services.touched())
}

/// `reconcile` for a workload kind.
#[tracing::instrument(skip_all, fields(kind = W::LABEL, object = %describe(workload.as_ref())))]
pub(crate) async fn reconcile<W: Workload>(
    workload: Arc<TrimmedWorkload<W>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    ctx.reconcile_measured(
        W::LABEL,
        workload.as_ref(),
        reconcile_service(workload.as_ref(), &ctx),
    )
    .await
}

async fn reconcile_service<W: Workload>(
    workload: &TrimmedWorkload<W>,
    ctx: &Context,
) -> Result<Action> {
    let namespace = namespace_of(workload)?;
    let uid = workload.uid().ok_or_else(|| Error::Incomplete {
        object: describe(workload),
        field: "uid",
    })?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let spec = dapr_app(
        &workload.name_any(),
        workload.template_annotations.as_ref(),
        workload.match_labels.as_ref(),
    );
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
            // Until the Services are listed, every lookup would miss and read from the API.
            crate::cache::ready(&ctx.services).await;
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
    let labelled: Vec<Arc<Service>> = ctx
        .services
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .collect();
    let labelled = labelled.iter().map(AsRef::as_ref);
    for name in stale_services(labelled.clone(), owner_uid, keep) {
        let stale = labelled
            .clone()
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
