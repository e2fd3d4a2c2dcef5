//! `GetSecret` and `GetBulkSecret` over [`crate::blocks::secrets`] (which applies the
//! Configuration's secret scopes: a hidden secret is refused, or left out of a bulk answer).

use super::Shared;
use dapr::dapr::proto::runtime::v1 as runtime;
use tonic::{Request, Response, Status};

pub async fn get(
    sc: &Shared,
    request: Request<runtime::GetSecretRequest>,
) -> Result<Response<runtime::GetSecretResponse>, Status> {
    let req = request.into_inner();
    let secret = sc.secrets().get(&req.store_name, &req.key).await?;
    Ok(Response::new(runtime::GetSecretResponse {
        data: secret.into_iter().collect(),
    }))
}

pub async fn bulk(
    sc: &Shared,
    request: Request<runtime::GetBulkSecretRequest>,
) -> Result<Response<runtime::GetBulkSecretResponse>, Status> {
    let req = request.into_inner();
    let all = sc.secrets().bulk(&req.store_name).await?;
    let data = all
        .into_iter()
        .map(|(name, secret)| {
            let secrets = secret.into_iter().collect();
            (name, runtime::SecretResponse { secrets })
        })
        .collect();
    Ok(Response::new(runtime::GetBulkSecretResponse { data }))
}
