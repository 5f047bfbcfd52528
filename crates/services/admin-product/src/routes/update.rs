//! `PUT /api/admin/products/{id}` with `If-Match`.

use teipsum_events::Event;
use teipsum_kit::{
    db::Db,
    domain::PathId,
    http::{Caller, json_reply},
};
use warp::{http::StatusCode, reply::Response};

use super::{ProductError, is_unique_violation, product_id, with_etag};
use crate::{
    domain::ProductInput,
    precondition::IfMatch,
    product::{COLUMNS, Product},
};

/// Replace a product if the client has read its current version; the new
/// version is announced with `product-updated`.
#[utoipa::path(
    put,
    path = "/api/admin/products/{id}",
    tag = "admin-product",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, format = Uuid, description = "The product's id"), ("If-Match" = String, Header, description = "The `ETag` of the version read (`\"3\"`; a weak `W/\"3\"` counts too), or `*`")),
    request_body = ProductInput,
    responses(
        (status = 200, description = "The product at its new version", body = Product,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "`INVALID_INPUT`: a field, the id or `If-Match` is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND` (or deleted)", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`SKU_TAKEN`", body = teipsum_kit::http::ErrorBody),
        (status = 412, description = "`PRECONDITION_FAILED`: the product changed since that version", body = teipsum_kit::http::ErrorBody),
        (status = 428, description = "`PRECONDITION_REQUIRED`: no `If-Match`", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn update(
    id: PathId,
    admin: Caller,
    db: Db,
    if_match: Option<String>,
    input: ProductInput,
) -> Result<Response, ProductError> {
    let id = product_id(&id)?;
    let valid = input.validated()?;
    let precondition = IfMatch::parse(if_match.as_deref())?;
    let product = db
        .run(move |conn| -> Result<Product, ProductError> {
            let mut tx = conn.transaction()?;
            precondition.lock(&mut tx, id)?;
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
                        ProductError::SkuTaken
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
