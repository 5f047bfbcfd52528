//! The admin routes of `/api/admin/inventory/`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    http::{Caller, ErrorResponse, admin, answer, json_body, json_reply, unexpected_response},
    jwt::Verifier,
};
use uuid::Uuid;
use warp::{Filter, Rejection, http::StatusCode, reply::Response};

use crate::{BODY_LIMIT, stock};

/// Most units a product can have.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Malformed input.
    #[error("{0}")]
    Invalid(String),
    /// Nothing is known about this product's stock.
    #[error("no stock recorded for this product")]
    NotFound,
    /// An adjustment that would go below zero.
    #[error("only {available} units are available")]
    Insufficient {
        /// What is there.
        available: i32,
    },
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(StockError);

impl ErrorResponse for StockError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            StockError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            StockError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            StockError::Insufficient { .. } => (StatusCode::CONFLICT, "INSUFFICIENT_STOCK"),
            StockError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// A stock level as admins see it.
#[derive(Debug, Serialize)]
pub struct Level {
    product_id: Uuid,
    /// Units that can still be sold.
    quantity: i32,
    /// Units held by orders.
    reserved: i64,
}

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    quantity: i64,
}

/// `POST .../adjust` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    delta: i64,
}

fn product_id(raw: &str) -> Result<Uuid, StockError> {
    Uuid::parse_str(raw)
        .map_err(|_| StockError::Invalid("the product id must be a UUID".to_owned()))
}

fn level(conn: &mut impl postgres::GenericClient, id: Uuid) -> Result<Level, StockError> {
    let row = conn
        .query_opt(
            "SELECT quantity FROM inventory.inventory WHERE product_id = $1",
            &[&id],
        )?
        .ok_or(StockError::NotFound)?;
    Ok(Level {
        product_id: id,
        quantity: row.get(0),
        reserved: stock::reserved(conn, id)?,
    })
}

/// `GET /api/admin/inventory/{product_id}`.
pub async fn show(id: String, db: Db, _admin: Caller) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    let level = db.run(move |conn| level(&mut **conn, id)).await?;
    Ok(json_reply(StatusCode::OK, &level))
}

/// `PUT /api/admin/inventory/{product_id}`: set the available units.
pub async fn set(
    id: String,
    db: Db,
    caller: Caller,
    body: SetStock,
) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    if !(0..=MAX_QUANTITY).contains(&body.quantity) {
        return Err(StockError::Invalid(format!(
            "quantity must be 0 to {MAX_QUANTITY}"
        )));
    }
    let quantity = body.quantity as i32;
    let level = db
        .run(move |conn| -> Result<Level, StockError> {
            let mut tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO inventory.inventory (product_id, quantity) VALUES ($1, $2) \
                 ON CONFLICT (product_id) DO UPDATE SET quantity = excluded.quantity",
                &[&id, &quantity],
            )?;
            stock::announce(&mut tx, id)?;
            let level = level(&mut tx, id)?;
            tx.commit()?;
            Ok(level)
        })
        .await?;
    tracing::info!(product_id = %id, quantity, admin = %caller.claims.sub, "stock set");
    Ok(json_reply(StatusCode::OK, &level))
}

/// `POST /api/admin/inventory/{product_id}/adjust`: add or remove units.
pub async fn adjust(
    id: String,
    db: Db,
    caller: Caller,
    body: Adjust,
) -> Result<Response, StockError> {
    let id = product_id(&id)?;
    if body.delta == 0 || body.delta.abs() > MAX_QUANTITY {
        return Err(StockError::Invalid(format!(
            "delta must be non-zero and at most {MAX_QUANTITY} either way"
        )));
    }
    let delta = body.delta as i32;
    let level = db
        .run(move |conn| -> Result<Level, StockError> {
            let mut tx = conn.transaction()?;
            if delta > 0 {
                tx.execute(
                    "INSERT INTO inventory.inventory (product_id, quantity) VALUES ($1, $2) \
                     ON CONFLICT (product_id) DO UPDATE SET quantity = inventory.inventory.quantity + excluded.quantity",
                    &[&id, &delta],
                )?;
            } else {
                // Guarded like a reservation: never below zero.
                let changed = tx.execute(
                    "UPDATE inventory.inventory SET quantity = quantity + $2 WHERE product_id = $1 AND quantity + $2 >= 0",
                    &[&id, &delta],
                )?;
                if changed == 0 {
                    let available = level(&mut tx, id)?.quantity;
                    return Err(StockError::Insufficient { available });
                }
            }
            stock::announce(&mut tx, id)?;
            let level = level(&mut tx, id)?;
            tx.commit()?;
            Ok(level)
        })
        .await?;
    tracing::info!(product_id = %id, delta, admin = %caller.claims.sub, "stock adjusted");
    Ok(json_reply(StatusCode::OK, &level))
}

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    let admin = admin(verifier);
    let show = warp::path!("api" / "admin" / "inventory" / String)
        .and(warp::get())
        .and(db.clone())
        .and(admin.clone())
        .then(show)
        .map(answer);
    let set = warp::path!("api" / "admin" / "inventory" / String)
        .and(warp::put())
        .and(db.clone())
        .and(admin.clone())
        .and(json_body(BODY_LIMIT))
        .then(set)
        .map(answer);
    let adjust = warp::path!("api" / "admin" / "inventory" / String / "adjust")
        .and(warp::post())
        .and(db)
        .and(admin)
        .and(json_body(BODY_LIMIT))
        .then(adjust)
        .map(answer);
    show.or(set).unify().or(adjust).unify()
}
