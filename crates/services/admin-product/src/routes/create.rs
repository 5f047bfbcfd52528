//! `POST /api/admin/products/`.

use teipsum_events::Event;
use teipsum_kit::{
    db::Db,
    http::{Caller, json_reply},
};
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::{ProductError, with_etag};
use crate::{
    domain::ProductInput,
    product::{COLUMNS, Product},
};

/// Create a product at version 1 and announce it with `product-created`.
#[utoipa::path(
    post,
    path = "/api/admin/products/",
    tag = "admin-product",
    security(("bearer" = ["admin"])),
    request_body = ProductInput,
    responses(
        (status = 201, description = "The product at version 1", body = Product,
            headers(("ETag" = String, description = "`\"1\"`"))),
        (status = 400, description = "`INVALID_INPUT`: a field is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`SKU_TAKEN`: another product has this SKU", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn create(admin: Caller, db: Db, input: ProductInput) -> Result<Response, ProductError> {
    let valid = input.validated()?;
    let id = Uuid::now_v7();
    let product = db
        .run(move |conn| -> Result<Product, ProductError> {
            let mut tx = conn.transaction()?;
            let image_urls: Vec<&str> = valid.image_urls.iter().map(|u| u.as_str()).collect();
            // The partial unique index decides a SKU race; DO NOTHING turns
            // the loser into "no row" rather than an error.
            let row = tx
                .query_opt(
                    &format!(
                        "INSERT INTO products (id, sku, name, description, price_minor, currency, \
                         category, image_urls, active, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
                         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
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
                )?
                .ok_or(ProductError::SkuTaken)?;
            let product = Product::from_row(&row);
            Event::ProductCreated(product.payload()).append(&mut tx)?;
            tx.commit()?;
            Ok(product)
        })
        .await?;
    tracing::info!(product_id = %product.id, sku = %product.sku, admin = %admin.claims.sub, "product created");
    Ok(with_etag(
        json_reply(StatusCode::CREATED, &product),
        &product.etag(),
    ))
}
