//! `DELETE /api/admin/products/{id}` with `If-Match`.

use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{Caller, ErrorResponse, unexpected_response},
};
use warp::{Reply, http::StatusCode, reply::Response};

use super::product_id;
use crate::{
    precondition::{IfMatch, PreconditionError},
    product::deleted_event,
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The id is not acceptable.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// `If-Match` is missing or malformed.
    #[error(transparent)]
    Precondition(#[from] PreconditionError),
    /// Someone changed the product since the client read it.
    #[error("the product changed since you read it (it is at version {current}); read it again")]
    Stale {
        /// The version it is at.
        current: i64,
    },
    /// No such product (or it was deleted already).
    #[error("product not found")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(DeleteError);

impl ErrorResponse for DeleteError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            DeleteError::Invalid(e) => e.response(),
            DeleteError::Precondition(e) => e.response(),
            DeleteError::Stale { .. } => (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"),
            DeleteError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            DeleteError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Delete a product if the client has read its current version. The row
/// stays as a tombstone with one more version, which `product-deleted`
/// carries: consumers then know any older event about it is outdated.
pub async fn delete(
    id: PathId,
    admin: Caller,
    db: Db,
    if_match: Option<String>,
) -> Result<Response, DeleteError> {
    let id = product_id(&id)?;
    let precondition = IfMatch::parse(if_match.as_deref())?;
    let version = db
        .run(move |conn| -> Result<i64, DeleteError> {
            let mut tx = conn.transaction()?;
            let current: i64 = tx
                .query_opt(
                    "SELECT version FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                    &[&id],
                )?
                .ok_or(DeleteError::NotFound)?
                .get(0);
            if !precondition.matches(current) {
                return Err(DeleteError::Stale { current });
            }
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
