//! `QueryStateAlpha1` over the state block's query: the request's `query` is Dapr's JSON query,
//! the answer the rows (keys without the app's prefix, `data` the stored JSON) and the next
//! page's token; when nothing matched, an empty answer (no token either), as from daprd.

use super::Shared;
use crate::blocks::state::QueryPage;
use dapr::dapr::proto::runtime::v1 as runtime;
use tonic::{Request, Response, Status};

pub async fn query(
    sc: &Shared,
    request: Request<runtime::QueryStateRequest>,
) -> Result<Response<runtime::QueryStateResponse>, Status> {
    let req = request.into_inner();
    let QueryPage { results, token } = sc
        .state()
        .query(&req.store_name, req.query.as_bytes())
        .await?;
    if results.is_empty() {
        return Ok(Response::new(runtime::QueryStateResponse::default()));
    }
    let results = results
        .into_iter()
        .map(|r| runtime::QueryStateItem {
            key: r.key,
            data: r.data.to_vec(),
            etag: r.etag.unwrap_or_default(),
            error: String::new(),
        })
        .collect();
    Ok(Response::new(runtime::QueryStateResponse {
        results,
        token: token.unwrap_or_default(),
        metadata: Default::default(),
    }))
}
