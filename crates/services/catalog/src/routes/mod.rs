//! The routes of `/api/products`: public, read-only, cacheable.

mod detail;
mod list;

use serde::Serialize;
use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId, Price},
    http::{ErrorResponse, answer, unexpected_response},
};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{Filter, Rejection, http::StatusCode, reply::Response};

use crate::{domain::Stock, snapshot::Snapshot};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A parameter or the id is not acceptable.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such product, or not shown (inactive, deleted).
    #[error("product not found")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(CatalogError);

impl ErrorResponse for CatalogError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            CatalogError::Invalid(e) => e.response(),
            CatalogError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            CatalogError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list::list, detail::detail),
    components(schemas(crate::domain::Sort))
)]
pub struct Api;

/// Every route of the service.
pub fn routes(
    db: Db,
    snapshot: Snapshot,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let snapshot = warp::any().map(move || snapshot.clone());
    let db = warp::any().map(move || db.clone());
    let if_none_match = warp::header::optional::<String>("if-none-match");
    // `path!` ends the path: `/api/products` and `/api/products/` both list.
    let list = warp::path!("api" / "products")
        .and(warp::get())
        .and(db.clone())
        .and(warp::query::<Vec<(String, String)>>())
        .and(if_none_match)
        .then(list::list)
        .map(answer);
    // `/api/products/` is the list: an empty id does not match.
    let detail = warp::path!("api" / "products" / PathId)
        .and(warp::get())
        .and(snapshot)
        .and(if_none_match)
        .then(detail::detail)
        .map(answer);
    list.or(detail).unify()
}

/// A product as shoppers see it (`CatalogProduct` in docs/api.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CatalogProduct {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub price: Price,
    pub category: String,
    pub image_urls: Vec<String>,
    /// Units available and their status.
    pub stock: Stock,
    /// When the version shown was made.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The columns [`Row::from_row`] reads; `p` is `products`, `s` is `stock`
/// (LEFT JOINed: a product without stock news has none).
pub const COLUMNS: &str = "p.id, p.name, p.description, p.sku, p.price_minor, p.currency, \
                           p.category, p.image_urls, p.version, p.created_at, p.updated_at, \
                           lower(p.name) AS name_key, coalesce(s.quantity, 0) AS quantity";

/// What shoppers may see: the product exists and is active.
pub const VISIBLE: &str = "p.active AND NOT p.deleted";

/// A row of [`COLUMNS`]: the product and what pagination and caching need.
#[derive(Debug, Clone)]
pub struct Row {
    /// The product.
    pub product: CatalogProduct,
    /// Its version (the detail's ETag).
    pub version: i64,
    /// Sort key of `newest`.
    pub created_at: OffsetDateTime,
    /// Sort key of `name`.
    pub name_key: String,
}

impl Row {
    /// From a row of [`COLUMNS`].
    pub fn from_row(row: &postgres::Row) -> Self {
        Row {
            product: CatalogProduct {
                id: row.get("id"),
                name: row.get("name"),
                description: row.get("description"),
                sku: row.get("sku"),
                price: Price {
                    amount_minor: row.get("price_minor"),
                    currency: row.get("currency"),
                },
                category: row.get("category"),
                image_urls: row.get("image_urls"),
                stock: Stock::of(row.get("quantity")),
                updated_at: row.get("updated_at"),
            },
            version: row.get("version"),
            created_at: row.get("created_at"),
            name_key: row.get("name_key"),
        }
    }
}
