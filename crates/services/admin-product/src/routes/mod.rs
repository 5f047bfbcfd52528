//! The routes of `/api/admin/products/`, all for administrators only.
//!
//! The admin check comes before the body is read, so that a caller without
//! the right learns nothing from validation messages and writes nothing.

mod create;
mod delete;
mod read;
mod update;

use std::sync::Arc;

use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{ApiError, ErrorResponse, admin, answer, json_body, unexpected_response},
    jwt::Verifier,
};
use uuid::Uuid;
use warp::{
    Filter, Rejection,
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

use crate::{
    BODY_LIMIT,
    precondition::{IfMatch, PreconditionError},
};

/// What can go wrong with a request about products.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// A field, the id, the limit or the cursor is not acceptable.
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
teipsum_kit::unexpected_errors!(ProductError);

impl ErrorResponse for ProductError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            ProductError::Invalid(e) => e.response(),
            ProductError::Precondition(e) => e.response(),
            ProductError::Stale { .. } => (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"),
            ProductError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ProductError::SkuTaken => (StatusCode::CONFLICT, "SKU_TAKEN"),
            ProductError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create::create, read::list, read::get, update::update, delete::delete))]
pub struct Api;

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    // `path!` ends the path: `/api/admin/products` and `/api/admin/products/`
    // are the collection (an empty id does not match `one`).
    let collection = warp::path!("api" / "admin" / "products");
    let one = warp::path!("api" / "admin" / "products" / PathId);
    let if_match = warp::header::optional::<String>("if-match");

    let create = collection
        .and(warp::post())
        .and(admin(verifier.clone()))
        .and(db.clone())
        .and(json_body(BODY_LIMIT))
        .then(create::create)
        .map(answer);
    let list = collection
        .and(warp::get())
        .and(admin(verifier.clone()))
        .and(db.clone())
        .and(warp::query::<Vec<(String, String)>>())
        .then(read::list)
        .map(answer);
    let get = one
        .and(warp::get())
        .and(admin(verifier.clone()))
        .and(db.clone())
        .then(read::get)
        .map(answer);
    let update = one
        .and(warp::put())
        .and(admin(verifier.clone()))
        .and(db.clone())
        .and(if_match)
        .and(json_body(BODY_LIMIT))
        .then(update::update)
        .map(answer);
    let delete = one
        .and(warp::delete())
        .and(admin(verifier))
        .and(db)
        .and(if_match)
        .then(delete::delete)
        .map(answer);
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or_else(explain)
}

/// Warp's own rejections of a route that matched, turned into the errors
/// they are. On a path with several methods, the other routes add a 405
/// to every rejection, and the kit's handler looks for 405 before it looks
/// at the body or the query: an oversized body would be answered "method
/// not allowed". An [`ApiError`] is found first, so it says what happened.
async fn explain(rejection: Rejection) -> Result<(Response,), Rejection> {
    use warp::reject::{InvalidHeader, InvalidQuery, LengthRequired, PayloadTooLarge};
    if rejection.find::<ApiError>().is_some() {
        return Err(rejection);
    }
    let error = if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body must be at most {BODY_LIMIT} bytes"),
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "LENGTH_REQUIRED",
            "send a Content-Length",
        )
    } else if rejection.find::<InvalidQuery>().is_some() {
        ApiError::invalid("invalid query string")
    } else if let Some(e) = rejection.find::<InvalidHeader>() {
        ApiError::invalid(format!("invalid header {}", e.name()))
    } else {
        return Err(rejection);
    };
    Err(error.reject())
}

/// The product id of a path.
fn product_id(id: &PathId) -> Result<Uuid, Invalid> {
    id.uuid("product")
}

impl IfMatch {
    /// Take the row of live product `id` until the transaction ends and
    /// check the precondition against its version: the lock makes
    /// check-then-write atomic, so of two changes from the same version the
    /// second sees the first's and fails.
    fn lock(&self, tx: &mut postgres::Transaction<'_>, id: Uuid) -> Result<(), ProductError> {
        let current: i64 = tx
            .query_opt(
                "SELECT version FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                &[&id],
            )?
            .ok_or(ProductError::NotFound)?
            .get(0);
        if !self.matches(current) {
            return Err(ProductError::Stale { current });
        }
        Ok(())
    }
}

/// `response` with an `ETag` header.
pub fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Whether `error` is a unique-constraint violation (a taken SKU).
pub fn is_unique_violation(error: &postgres::Error) -> bool {
    error.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
