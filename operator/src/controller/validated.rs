//! The reconcile shared by the validated kinds (Component, Subscription, Configuration): get the
//! verdict, compute the status, and apply it to the status subresource only when it differs from
//! what is there. Each kind supplies its verdict through [`Validate`].

use super::events::EventType;
use super::{Context, FIELD_MANAGER, Labelled, RESYNC, describe, namespace_of};
use crate::conditions::{Verdict, desired_status, needs_write, ready_changed};
use crate::error::{Error, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use tandem_crds::Status;

/// A dapr.io kind whose `Ready` condition the operator maintains.
pub(crate) trait Validate:
    Labelled
    + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    fn status(&self) -> Option<&Status>;

    /// Reads what the rules need and returns their verdict.
    fn verdict(&self, ctx: &Context) -> impl Future<Output = Result<Verdict>> + Send;
}

/// `reconcile` for a validated kind.
#[tracing::instrument(skip_all, fields(kind = K::LABEL, object = %describe(object.as_ref())))]
pub(crate) async fn reconcile<K: Validate>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconcile_measured(K::LABEL, object.as_ref(), validate(object.as_ref(), &ctx))
        .await
}

async fn validate<K: Validate>(object: &K, ctx: &Context) -> Result<Action> {
    let verdict = object.verdict(ctx).await?;
    let current = object.status();
    let now = Time(Timestamp::now());
    let desired = desired_status(current, &verdict, object.meta().generation, now);
    if !needs_write(current, &desired) {
        return Ok(Action::requeue(RESYNC));
    }
    let namespace = namespace_of(object)?;
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&name, &params, &Patch::Apply(&patch))
        .await
        .map_err(Error::api(format!("apply status of {}", describe(object))))?;
    tracing::info!(
        ready = verdict.is_ready(),
        reason = verdict.reason.as_str(),
        message = %verdict.message,
        "status written"
    );
    if ready_changed(current, &desired) {
        let type_ = if verdict.is_ready() {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let reference = object.object_ref(&());
        let reason = verdict.reason.as_str();
        ctx.publish(&reference, type_, reason, "Validate", verdict.message)
            .await;
    }
    Ok(Action::requeue(RESYNC))
}
