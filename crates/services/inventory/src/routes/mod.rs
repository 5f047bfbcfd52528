//! The admin routes of `/api/admin/inventory/`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{Caller, ErrorResponse, admin, answer, json_body, json_reply, unexpected_response},
    jwt::Verifier,
};
use uuid::Uuid;
use warp::{Filter, Rejection, http::StatusCode, reply::Response};

use crate::{BODY_LIMIT, stock};

/// Most units a product can have on hand (available plus reserved).
pub const MAX_QUANTITY: i64 = 1_000_000;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Malformed input.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Nothing is known about this product's stock.
    #[error("no stock recorded for this product")]
    NotFound,
    /// A product that inventory has not heard of (yet).
    #[error("no such product; a product just created takes a moment to reach inventory")]
    UnknownProduct,
    /// A deleted product: it cannot be stocked.
    #[error("this product is deleted")]
    Deleted,
    /// An adjustment that would go below zero.
    #[error("only {available} units are available")]
    Insufficient {
        /// What is there.
        available: i64,
    },
    /// Fewer units on hand than orders hold.
    #[error("{reserved} units are reserved by orders; on hand cannot be less")]
    BelowReserved {
        /// Units held by orders.
        reserved: i64,
    },
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(StockError);

impl ErrorResponse for StockError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            StockError::Invalid(e) => e.response(),
            StockError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            StockError::UnknownProduct => (StatusCode::NOT_FOUND, "UNKNOWN_PRODUCT"),
            StockError::Deleted => (StatusCode::CONFLICT, "PRODUCT_DELETED"),
            StockError::BelowReserved { .. } => (StatusCode::CONFLICT, "BELOW_RESERVED"),
            StockError::Insufficient { .. } => (StatusCode::CONFLICT, "INSUFFICIENT_STOCK"),
            StockError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// A stock level as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Level {
    /// The product.
    product_id: Uuid,
    /// Units that can still be sold.
    quantity: i64,
    /// Units held by orders.
    reserved: i64,
    /// `quantity + reserved`: the units there are.
    on_hand: i64,
}

/// `PUT` body: the units on hand, reserved ones included.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    /// The units there are, 0 to 1 000 000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    on_hand: i64,
}

/// `POST .../adjust` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    /// Units to add (or, negative, to remove): non-zero, at most 1 000 000 either way.
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    delta: i64,
}

fn product_id(id: &PathId) -> Result<Uuid, Invalid> {
    id.uuid("product")
}

fn level(conn: &mut impl postgres::GenericClient, id: Uuid) -> Result<Level, StockError> {
    let row = conn
        .query_opt(
            "SELECT quantity FROM inventory.inventory WHERE product_id = $1",
            &[&id],
        )?
        .ok_or(StockError::NotFound)?;
    let (quantity, reserved): (i64, i64) = (row.get(0), stock::reserved(conn, id)?);
    Ok(Level {
        product_id: id,
        quantity,
        reserved,
        on_hand: quantity + reserved,
    })
}

/// Refuse stock for a product inventory does not know, or knows as deleted.
fn stockable(tx: &mut impl postgres::GenericClient, id: Uuid) -> Result<(), StockError> {
    let deleted: bool = tx
        .query_opt(
            "SELECT deleted FROM inventory.products WHERE product_id = $1",
            &[&id],
        )?
        .ok_or(StockError::UnknownProduct)?
        .get(0);
    if deleted {
        return Err(StockError::Deleted);
    }
    Ok(())
}

/// Take the product's stock row (created at zero), so that no reservation
/// or release of it runs until this transaction ends.
fn lock_level(tx: &mut impl postgres::GenericClient, id: Uuid) -> Result<(), StockError> {
    tx.execute(
        "INSERT INTO inventory.inventory (product_id, quantity) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        &[&id],
    )?;
    tx.query_one(
        "SELECT 1 FROM inventory.inventory WHERE product_id = $1 FOR UPDATE",
        &[&id],
    )?;
    Ok(())
}

/// Change the stock of `id` in one transaction: refuse a product inventory
/// cannot stock, take the level's row, run `change`, announce the new level
/// and answer with it.
async fn change_level(
    db: &Db,
    id: Uuid,
    change: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<(), StockError> + Send + 'static,
) -> Result<Level, StockError> {
    db.run(move |conn| {
        let mut tx = conn.transaction()?;
        stockable(&mut tx, id)?;
        lock_level(&mut tx, id)?;
        change(&mut tx)?;
        stock::announce(&mut tx, id)?;
        let level = level(&mut tx, id)?;
        tx.commit()?;
        Ok(level)
    })
    .await
}

/// `GET /api/admin/inventory/{product_id}`.
#[utoipa::path(
    get,
    path = "/api/admin/inventory/{product_id}",
    tag = "inventory",
    security(("bearer" = ["admin"])),
    params(("product_id" = String, Path, format = Uuid, description = "The product's id")),
    responses(
        (status = 200, description = "The product's stock", body = Level),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no stock was ever set", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn show(id: PathId, db: Db, _admin: Caller) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    let level = db.run(move |conn| level(&mut **conn, id)).await?;
    Ok(json_reply(StatusCode::OK, &level))
}

/// `PUT /api/admin/inventory/{product_id}`: set the units on hand; what can
/// still be sold is what orders do not hold.
///
/// Not a blind write: the row is locked first, and the reserved units are
/// read by the next statement, which at READ COMMITTED sees every
/// reservation committed before the lock was given (a reservation takes
/// the row before it records itself; a release records itself and then
/// waits for the row, adding its units back after this one).
#[utoipa::path(
    put,
    path = "/api/admin/inventory/{product_id}",
    tag = "inventory",
    security(("bearer" = ["admin"])),
    params(("product_id" = String, Path, format = Uuid, description = "The product's id")),
    request_body = SetStock,
    responses(
        (status = 200, description = "The new level", body = Level),
        (status = 400, description = "`INVALID_INPUT`: the id or the body is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`UNKNOWN_PRODUCT`: inventory has not heard of it (a product just created reaches it within a moment)", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`BELOW_RESERVED` (orders hold more than `on_hand`) or `PRODUCT_DELETED`", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn set(
    id: PathId,
    db: Db,
    caller: Caller,
    body: SetStock,
) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    let on_hand = body.on_hand;
    if !(0..=MAX_QUANTITY).contains(&on_hand) {
        return Err(Invalid(format!("on_hand must be 0 to {MAX_QUANTITY}")).into());
    }
    let level = change_level(&db, id, move |tx| {
        let set = tx.query_opt(
                "UPDATE inventory.inventory i SET quantity = $2 - r.held \
                 FROM (SELECT coalesce(sum(quantity), 0)::BIGINT AS held FROM inventory.reservations \
                       WHERE product_id = $1 AND released_at IS NULL) r \
                 WHERE i.product_id = $1 AND r.held <= $2 RETURNING i.quantity",
                &[&id, &on_hand],
            )?;
        if set.is_none() {
            let reserved = stock::reserved(tx, id)?;
            return Err(StockError::BelowReserved { reserved });
        }
        Ok(())
    })
    .await?;
    tracing::info!(product_id = %id, on_hand, admin = %caller.claims.sub, "stock set");
    Ok(json_reply(StatusCode::OK, &level))
}

/// `POST /api/admin/inventory/{product_id}/adjust`: add or remove units.
#[utoipa::path(
    post,
    path = "/api/admin/inventory/{product_id}/adjust",
    tag = "inventory",
    security(("bearer" = ["admin"])),
    params(("product_id" = String, Path, format = Uuid, description = "The product's id")),
    request_body = Adjust,
    responses(
        (status = 200, description = "The new level", body = Level),
        (status = 400, description = "`INVALID_INPUT`: the id or the body is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`UNKNOWN_PRODUCT`: inventory has not heard of it (a product just created reaches it within a moment)", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`INSUFFICIENT_STOCK` (below zero available) or `PRODUCT_DELETED`", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn adjust(
    id: PathId,
    db: Db,
    caller: Caller,
    body: Adjust,
) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    // unsigned_abs: `i64::MIN.abs()` overflows.
    let delta = body.delta;
    if delta == 0 || delta.unsigned_abs() > MAX_QUANTITY as u64 {
        return Err(Invalid(format!(
            "delta must be non-zero and at most {MAX_QUANTITY} either way"
        ))
        .into());
    }
    let level = change_level(&db, id, move |tx| {
        let current = level(tx, id)?;
        if current.quantity + delta < 0 {
            return Err(StockError::Insufficient {
                available: current.quantity,
            });
        }
        if current.on_hand + delta > MAX_QUANTITY {
            return Err(Invalid(format!(
                "{} units on hand plus {delta} would exceed {MAX_QUANTITY}",
                current.on_hand
            ))
            .into());
        }
        tx.execute(
            "UPDATE inventory.inventory SET quantity = quantity + $2 WHERE product_id = $1",
            &[&id, &delta],
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(product_id = %id, delta, admin = %caller.claims.sub, "stock adjusted");
    Ok(json_reply(StatusCode::OK, &level))
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, set, adjust))]
pub struct Api;

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    let admin = admin(verifier);
    let show = warp::path!("api" / "admin" / "inventory" / PathId)
        .and(warp::get())
        .and(db.clone())
        .and(admin.clone())
        .then(show)
        .map(answer);
    let set = warp::path!("api" / "admin" / "inventory" / PathId)
        .and(warp::put())
        .and(db.clone())
        .and(admin.clone())
        .and(json_body(BODY_LIMIT))
        .then(set)
        .map(answer);
    let adjust = warp::path!("api" / "admin" / "inventory" / PathId / "adjust")
        .and(warp::post())
        .and(db)
        .and(admin)
        .and(json_body(BODY_LIMIT))
        .then(adjust)
        .map(answer);
    show.or(set).unify().or(adjust).unify()
}
