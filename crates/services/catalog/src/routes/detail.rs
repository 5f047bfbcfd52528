//! `GET /api/products/{id}`.

use teipsum_kit::domain::PathId;
use warp::reply::Response;

use super::CatalogError;
use crate::{cache::cached_json, snapshot::Snapshot};

/// One product with its stock status. The ETag is `"<version>-<status>"`:
/// the body changes exactly when one of the two does, and the tag tells no
/// more than the body (not the count).
#[utoipa::path(
    get,
    path = "/api/products/{id}",
    tag = "catalog",
    params(
        ("id" = String, Path, format = Uuid, description = "The product's id"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` read before: `304` while it still matches"),
    ),
    responses(
        (status = 200, description = "The product with its stock status", body = super::CatalogProduct,
            headers(
                ("ETag" = String, description = "`\"<version>-<stock status>\"`"),
                ("Cache-Control" = String, description = "`public, max-age=5`"),
            )),
        (status = 304, description = "Not modified since the `If-None-Match` tag"),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such product, or not shown (inactive, deleted)", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn detail(
    id: PathId,
    snapshot: Snapshot,
    if_none_match: Option<String>,
) -> Result<Response, CatalogError> {
    let id = id.uuid("product")?;
    // From the snapshot the consumer keeps current: no database round trip.
    let page = snapshot.get(id).ok_or(CatalogError::NotFound)?;
    Ok(cached_json(
        page.body.clone(),
        &page.etag,
        if_none_match.as_deref(),
    ))
}
