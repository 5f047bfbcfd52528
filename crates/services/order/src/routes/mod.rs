//! The routes of `/api/orders/`.

mod cancel;
mod list;
mod place;
mod show;

use std::sync::Arc;

use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{ErrorResponse, answer, authenticated, json_body, unexpected_response},
    jwt::Verifier,
};
use warp::{Filter, Rejection, http::StatusCode, reply::Response};

use crate::{BODY_LIMIT, limits::Limits, metrics::Saga};

pub use cancel::cancel;
pub use list::list;
pub use place::place;
pub use show::show;

/// What can go wrong with an order request.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Malformed input.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A product that does not exist (or not any more).
    #[error("product {0} does not exist")]
    UnknownProduct(uuid::Uuid),
    /// A product that is not for sale.
    #[error("product {0} is not for sale")]
    Unavailable(uuid::Uuid),
    /// Products priced in different currencies.
    #[error("all products of an order must be priced in the same currency")]
    MixedCurrency,
    /// The order is not there (or not the caller's).
    #[error("order not found")]
    NotFound,
    /// The order's status does not allow it.
    #[error("an order that is {0} cannot be cancelled")]
    InvalidState(String),
    /// More units of a product than one order may hold.
    #[error("an order may hold at most {max} units of product {product_id}")]
    TooManyUnits {
        /// The product.
        product_id: uuid::Uuid,
        /// The cap (`order_limits.max_units_per_product`).
        max: i32,
    },
    /// The customer already has as many open orders as allowed.
    #[error("you already have {max} open orders; wait until they are confirmed or cancel one")]
    TooManyOpenOrders {
        /// The cap (`order_limits.max_open_orders`).
        max: i64,
    },
    /// The same Idempotency-Key with a different request.
    #[error("this Idempotency-Key was used for a different request")]
    KeyReused,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(OrderError);

impl ErrorResponse for OrderError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            OrderError::Invalid(e) => e.response(),
            OrderError::UnknownProduct(_) => (StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_PRODUCT"),
            OrderError::Unavailable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "PRODUCT_UNAVAILABLE"),
            OrderError::MixedCurrency => (StatusCode::UNPROCESSABLE_ENTITY, "MIXED_CURRENCY"),
            OrderError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            OrderError::InvalidState(_) => (StatusCode::CONFLICT, "INVALID_STATE"),
            OrderError::TooManyUnits { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "QUANTITY_LIMIT"),
            OrderError::TooManyOpenOrders { .. } => (StatusCode::CONFLICT, "TOO_MANY_OPEN_ORDERS"),
            OrderError::KeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
            OrderError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// The order id of a path.
fn order_id(id: &PathId) -> Result<uuid::Uuid, Invalid> {
    id.uuid("order")
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(place::place, list::list, show::show, cancel::cancel))]
pub struct Api;

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
    limits: Limits,
    saga: Saga,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    let caller = authenticated(verifier);
    let place = warp::path!("api" / "orders")
        .and(warp::path::end())
        .and(warp::post())
        .and(db.clone())
        .and(caller.clone())
        .and(warp::any().map(move || limits))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body(BODY_LIMIT))
        .then(place)
        .map(answer);
    let list = warp::path!("api" / "orders")
        .and(warp::get())
        .and(db.clone())
        .and(caller.clone())
        .and(warp::query::<Vec<(String, String)>>())
        .then(list)
        .map(answer);
    let show = warp::path!("api" / "orders" / PathId)
        .and(warp::get())
        .and(db.clone())
        .and(caller.clone())
        .then(show)
        .map(answer);
    let cancel = warp::path!("api" / "orders" / PathId / "cancel")
        .and(warp::post())
        .and(db)
        .and(caller)
        .and(warp::any().map(move || saga.clone()))
        .then(cancel)
        .map(answer);
    place.or(list).unify().or(show).unify().or(cancel).unify()
}
