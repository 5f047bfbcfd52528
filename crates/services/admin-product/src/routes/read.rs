//! `GET /api/admin/products/` and `GET /api/admin/products/{id}`.

use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    domain::{Cursor, PathId, query_params},
    http::{Caller, PageLimit, json_reply},
};
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::{ProductError, product_id, with_etag};
use crate::product::{COLUMNS, Product};

/// One product, with its version as the ETag.
#[utoipa::path(
    get,
    path = "/api/admin/products/{id}",
    tag = "admin-product",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, format = Uuid, description = "The product's id")),
    responses(
        (status = 200, description = "The product", body = Product,
            headers(("ETag" = String, description = "The version, `\"<version>\"`: send it as `If-Match`"))),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND` (or deleted)", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn get(id: PathId, _admin: Caller, db: Db) -> Result<Response, ProductError> {
    let id = product_id(&id)?;
    let product = db
        .run(move |conn| -> Result<Product, ProductError> {
            let row = conn
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM products WHERE id = $1 AND deleted_at IS NULL"),
                    &[&id],
                )?
                .ok_or(ProductError::NotFound)?;
            Ok(Product::from_row(&row))
        })
        .await?;
    Ok(with_etag(
        json_reply(StatusCode::OK, &product),
        &product.etag(),
    ))
}

/// Where the next page starts: after the product with this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    after: Uuid,
}

impl Cursor for After {}

/// A page of the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ProductPage)]
pub struct Page {
    /// Newest first.
    items: Vec<Product>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// Products, newest first, in pages that stay stable while products are
/// added: the order is the id's (UUIDv7, time-ordered) and a page starts
/// strictly after the last id of the one before (keyset pagination), so
/// an insertion never shifts what is left to read.
#[utoipa::path(
    get,
    path = "/api/admin/products/",
    tag = "admin-product",
    security(("bearer" = ["admin"])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Products per page (20 by default)"),
        ("cursor" = Option<String>, Query, max_length = 2048, description = "The `next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "A page of products, newest first", body = Page),
        (status = 400, description = "`INVALID_INPUT`: a bad `limit` or `cursor`, or an unknown parameter", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn list(
    _admin: Caller,
    db: Db,
    query: Vec<(String, String)>,
) -> Result<Response, ProductError> {
    let params = query_params(query, &["limit", "cursor"])?;
    let limit = PageLimit::parse(params.get("limit").map(String::as_str))?.get();
    let after = params
        .get("cursor")
        .map(|c| After::decode(c))
        .transpose()?
        .map(|c| c.after);
    let mut items = db
        .run(move |conn| -> Result<Vec<Product>, ProductError> {
            let rows = conn.query(
                &format!(
                    "SELECT {COLUMNS} FROM products WHERE deleted_at IS NULL \
                     AND ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
                ),
                &[&after, &(limit + 1)],
            )?;
            Ok(rows.iter().map(Product::from_row).collect())
        })
        .await?;
    // One more row than asked for tells whether there is a next page.
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|p| After { after: p.id }.encode())
    } else {
        None
    };
    Ok(json_reply(StatusCode::OK, &Page { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = After {
            after: Uuid::now_v7(),
        };
        assert_eq!(After::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!!", "e30", "eyJhZnRlciI6MX0"] {
            assert!(After::decode(bad).is_err(), "{bad}");
        }
    }
}
