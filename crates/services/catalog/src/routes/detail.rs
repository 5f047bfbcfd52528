//! `GET /api/products/{id}`.

use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{ErrorResponse, unexpected_response},
};
use warp::{http::StatusCode, reply::Response};

use super::{COLUMNS, Row, VISIBLE};
use crate::cache::cached_json;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DetailError {
    /// The id is not a UUID.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such product, or not shown (inactive, deleted).
    #[error("product not found")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(DetailError);

impl ErrorResponse for DetailError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            DetailError::Invalid(e) => e.response(),
            DetailError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            DetailError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// One product with its stock status. The ETag is `"<version>-<status>"`:
/// the body changes exactly when one of the two does, and the tag tells no
/// more than the body (not the count).
pub async fn detail(
    id: PathId,
    db: Db,
    if_none_match: Option<String>,
) -> Result<Response, DetailError> {
    let id = id.uuid("product")?;
    let row = db
        .run(move |conn| -> Result<Row, DetailError> {
            let row = conn
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM products p LEFT JOIN stock s ON s.product_id = p.id \
                         WHERE p.id = $1 AND {VISIBLE}"
                    ),
                    &[&id],
                )?
                .ok_or(DetailError::NotFound)?;
            Ok(Row::from_row(&row))
        })
        .await?;
    let etag = format!("\"{}-{}\"", row.version, row.product.stock.status.as_str());
    let body = serde_json::to_vec(&row.product).map_err(anyhow::Error::from)?;
    Ok(cached_json(body, &etag, if_none_match.as_deref()))
}
