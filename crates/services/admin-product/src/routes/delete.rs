//! `DELETE /api/admin/products/{id}` with `If-Match`.

use teipsum_kit::{db::Db, domain::PathId, http::Caller};
use warp::{Reply, http::StatusCode, reply::Response};

use super::{ProductError, product_id};
use crate::{precondition::IfMatch, product::deleted_event};

/// Delete a product if the client has read its current version. The row
/// stays as a tombstone with one more version, which `product-deleted`
/// carries: consumers then know any older event about it is outdated.
#[utoipa::path(
    delete,
    path = "/api/admin/products/{id}",
    tag = "admin-product",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, format = Uuid, description = "The product's id"), ("If-Match" = String, Header, description = "The `ETag` of the version read (`\"3\"`; a weak `W/\"3\"` counts too), or `*`")),
    responses(
        (status = 204, description = "Deleted; `product-deleted` announces it"),
        (status = 400, description = "`INVALID_INPUT`: the id or `If-Match` is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND` (or already deleted)", body = teipsum_kit::http::ErrorBody),
        (status = 412, description = "`PRECONDITION_FAILED`: the product changed since that version", body = teipsum_kit::http::ErrorBody),
        (status = 428, description = "`PRECONDITION_REQUIRED`: no `If-Match`", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn delete(
    id: PathId,
    admin: Caller,
    db: Db,
    if_match: Option<String>,
) -> Result<Response, ProductError> {
    let id = product_id(&id)?;
    let precondition = IfMatch::parse(if_match.as_deref())?;
    let version = db
        .run(move |conn| -> Result<i64, ProductError> {
            let mut tx = conn.transaction()?;
            precondition.lock(&mut tx, id)?;
            let version: i64 = tx
                .query_one(
                    "UPDATE products SET deleted_at = now(), updated_at = now(), version = version + 1 \
                     WHERE id = $1 RETURNING version",
                    &[&id],
                )?
                .get(0);
            deleted_event(id, version).append(&mut tx)?;
            tx.commit()?;
            Ok(version)
        })
        .await?;
    tracing::info!(product_id = %id, version, admin = %admin.claims.sub, "product deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
