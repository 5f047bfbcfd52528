//! `GET /api/products/{id}`.

use teipsum_kit::domain::PathId;
use warp::reply::Response;

use super::CatalogError;
use crate::{cache::cached_json, snapshot::Snapshot};

/// One product with its stock status. The ETag is `"<version>-<status>"`:
/// the body changes exactly when one of the two does, and the tag tells no
/// more than the body (not the count). Answered from the snapshot the
/// consumer keeps current: no database round trip.
pub async fn detail(
    id: PathId,
    snapshot: Snapshot,
    if_none_match: Option<String>,
) -> Result<Response, CatalogError> {
    let id = id.uuid("product")?;
    let page = snapshot.get(id).ok_or(CatalogError::NotFound)?;
    Ok(cached_json(
        page.body.clone(),
        &page.etag,
        if_none_match.as_deref(),
    ))
}
