//! Installing CustomResourceDefinitions: server-side apply (so tests sharing a control plane can
//! install the same CRD at once), then wait for the apiserver to report each `Established`, which
//! it only does for a valid, structural schema.

use crate::{Error, TestEnv};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use std::time::{Duration, Instant};

/// How long the apiserver may take to establish a CRD.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);

impl TestEnv {
    /// Applies `crds` and waits until every one is `Established`.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<(), Error> {
        let api = Api::<CustomResourceDefinition>::all(self.client());
        let params = PatchParams::apply("tandem-envtest").force();
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(crd)).await?;
        }
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            wait_established(&api, &name).await?;
        }
        Ok(())
    }
}

/// Polls the CRD `name` until its `Established` condition is `True`.
async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<(), Error> {
    let deadline = Instant::now() + ESTABLISH_TIMEOUT;
    loop {
        let crd = api.get(name).await?;
        let conditions = crd
            .status
            .and_then(|status| status.conditions)
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let conditions = conditions
                .iter()
                .map(|c| {
                    format!(
                        "{}={} ({})",
                        c.type_,
                        c.status,
                        c.message.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::NotEstablished {
                name: name.to_owned(),
                waited: ESTABLISH_TIMEOUT,
                conditions,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
