//! The routes of `/api/admin/products/`, all for administrators only.
//!
//! The admin check comes before the body is read, so that a caller without
//! the right learns nothing from validation messages and writes nothing.

pub mod create;
pub mod delete;
pub mod read;
pub mod update;

use std::{collections::BTreeMap, sync::Arc};

use teipsum_kit::{
    db::Db,
    http::{ApiError, admin, answer, json_body},
    jwt::Verifier,
};
use uuid::Uuid;
use warp::{
    Filter, Rejection,
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

use crate::{BODY_LIMIT, domain::Invalid};

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    // `path!` ends the path: `/api/admin/products` and `/api/admin/products/`.
    let collection = warp::path!("api" / "admin" / "products");
    let one = warp::path!("api" / "admin" / "products" / String).and_then(non_empty);
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

/// `/api/admin/products/` is the collection, not a product with an empty id.
async fn non_empty(id: String) -> Result<String, Rejection> {
    if id.is_empty() {
        Err(warp::reject::not_found())
    } else {
        Ok(id)
    }
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

/// A product id from the path; anything but a UUID is a 400, not a 404,
/// so that a client sees its own mistake.
pub fn product_id(raw: &str) -> Result<Uuid, Invalid> {
    Uuid::parse_str(raw).map_err(|_| Invalid("the product id must be a UUID".to_owned()))
}

/// Query parameters by name: unknown and repeated names are refused, so that
/// a misspelt `limt=` is an error rather than silently ignored.
pub fn query_params(
    pairs: Vec<(String, String)>,
    known: &[&str],
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut params = BTreeMap::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(Invalid(format!(
                "unknown query parameter `{name}`; known: {}",
                known.join(", ")
            )));
        }
        if params.insert(name.clone(), value).is_some() {
            return Err(Invalid(format!("query parameter `{name}` is given twice")));
        }
    }
    Ok(params)
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
