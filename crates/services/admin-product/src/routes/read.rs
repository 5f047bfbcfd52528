//! `GET /api/admin/products/` and `GET /api/admin/products/{id}`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    http::{Caller, ErrorResponse, PageLimit, json_reply, unexpected_response},
};
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::{product_id, query_params, with_etag};
use crate::{
    domain::Invalid,
    product::{COLUMNS, Product},
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A malformed id, limit or cursor.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such product (or it was deleted).
    #[error("product not found")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(ReadError);

impl ErrorResponse for ReadError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            ReadError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ReadError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ReadError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// One product, with its version as the ETag.
pub async fn get(id: String, _admin: Caller, db: Db) -> Result<Response, ReadError> {
    let id = product_id(&id)?;
    let product = db
        .run(move |conn| -> Result<Product, ReadError> {
            let row = conn
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM products WHERE id = $1 AND deleted_at IS NULL"),
                    &[&id],
                )?
                .ok_or(ReadError::NotFound)?;
            Ok(Product::from_row(&row))
        })
        .await?;
    Ok(with_etag(
        json_reply(StatusCode::OK, &product),
        &product.etag(),
    ))
}

/// Where the next page starts: after the product with this id. Opaque to
/// clients (base64 of JSON), so that its content may change without
/// breaking them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    after: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    fn decode(raw: &str) -> Result<Self, Invalid> {
        URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                Invalid("cursor is not valid; pass the next_cursor of a page".to_owned())
            })
    }
}

/// A page of the list.
#[derive(Debug, Serialize)]
pub struct Page {
    items: Vec<Product>,
    next_cursor: Option<String>,
}

/// Products, newest first, in pages that stay stable while products are
/// added: the order is the id's (UUIDv7, time-ordered) and a page starts
/// strictly after the last id of the one before (keyset pagination), so
/// an insertion never shifts what is left to read.
pub async fn list(
    _admin: Caller,
    db: Db,
    query: Vec<(String, String)>,
) -> Result<Response, ReadError> {
    let params = query_params(query, &["limit", "cursor"])?;
    let limit = PageLimit::parse(params.get("limit").map(String::as_str))
        .map_err(Invalid)?
        .get();
    let after = params
        .get("cursor")
        .map(|c| Cursor::decode(c))
        .transpose()?
        .map(|c| c.after);
    let mut items = db
        .run(move |conn| -> Result<Vec<Product>, ReadError> {
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
        items.last().map(|p| Cursor { after: p.id }.encode())
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
        let cursor = Cursor {
            after: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!!", "e30", "eyJhZnRlciI6MX0"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
