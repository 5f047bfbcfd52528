//! `GET /api/products/{id}`.

use teipsum_kit::{db::Db, domain::PathId};
use warp::reply::Response;

use super::{COLUMNS, CatalogError, Row, VISIBLE};
use crate::cache::cached_json;

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
    db: Db,
    if_none_match: Option<String>,
) -> Result<Response, CatalogError> {
    let id = id.uuid("product")?;
    let row = db
        .run(move |conn| -> Result<Row, CatalogError> {
            let row = conn
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM products p LEFT JOIN stock s ON s.product_id = p.id \
                         WHERE p.id = $1 AND {VISIBLE}"
                    ),
                    &[&id],
                )?
                .ok_or(CatalogError::NotFound)?;
            Ok(Row::from_row(&row))
        })
        .await?;
    let etag = format!("\"{}-{}\"", row.version, row.product.stock.status.as_str());
    let body = serde_json::to_vec(&row.product).map_err(anyhow::Error::from)?;
    Ok(cached_json(body, &etag, if_none_match.as_deref()))
}
