//! `PUT /api/admin/products/{id}` with `If-Match`.

use teipsum_events::Event;
use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{Caller, ErrorResponse, json_reply, unexpected_response},
};
use warp::{http::StatusCode, reply::Response};

use super::{is_unique_violation, product_id, with_etag};
use crate::{
    domain::ProductInput,
    precondition::{IfMatch, PreconditionError},
    product::{COLUMNS, Product},
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// A field or the id is not acceptable.
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
    /// No such product (or it was deleted).
    #[error("product not found")]
    NotFound,
    /// Another product has this SKU.
    #[error("another product has this sku")]
    SkuTaken,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(UpdateError);

impl ErrorResponse for UpdateError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            UpdateError::Invalid(e) => e.response(),
            UpdateError::Precondition(e) => e.response(),
            UpdateError::Stale { .. } => (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"),
            UpdateError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            UpdateError::SkuTaken => (StatusCode::CONFLICT, "SKU_TAKEN"),
            UpdateError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Replace a product if the client has read its current version; the new
/// version is announced with `product-updated`.
pub async fn update(
    id: PathId,
    admin: Caller,
    db: Db,
    if_match: Option<String>,
    input: ProductInput,
) -> Result<Response, UpdateError> {
    let id = product_id(&id)?;
    let valid = input.validated()?;
    let precondition = IfMatch::parse(if_match.as_deref())?;
    let product = db
        .run(move |conn| -> Result<Product, UpdateError> {
            let mut tx = conn.transaction()?;
            // The row lock makes check-then-write atomic: of two updates
            // from the same version, the second sees the first's.
            let current: i64 = tx
                .query_opt(
                    "SELECT version FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                    &[&id],
                )?
                .ok_or(UpdateError::NotFound)?
                .get(0);
            if !precondition.matches(current) {
                return Err(UpdateError::Stale { current });
            }
            let image_urls: Vec<&str> = valid.image_urls.iter().map(|u| u.as_str()).collect();
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE products SET sku = $2, name = $3, description = $4, price_minor = $5, \
                         currency = $6, category = $7, image_urls = $8, active = $9, \
                         version = version + 1, updated_at = now() \
                         WHERE id = $1 RETURNING {COLUMNS}"
                    ),
                    &[
                        &id,
                        &valid.sku.as_str(),
                        &valid.name.as_str(),
                        &valid.description.as_str(),
                        &valid.price.amount_minor(),
                        &valid.price.currency().as_str(),
                        &valid.category.as_str(),
                        &image_urls,
                        &valid.active,
                    ],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        UpdateError::SkuTaken
                    } else {
                        e.into()
                    }
                })?;
            let product = Product::from_row(&row);
            Event::ProductUpdated(product.payload()).append(&mut tx)?;
            tx.commit()?;
            Ok(product)
        })
        .await?;
    tracing::info!(product_id = %product.id, version = product.version, admin = %admin.claims.sub, "product updated");
    Ok(with_etag(
        json_reply(StatusCode::OK, &product),
        &product.etag(),
    ))
}
