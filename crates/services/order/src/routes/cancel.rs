//! `POST /api/orders/{id}/cancel`.

use teipsum_events::{Event, OrderCancelled};
use teipsum_kit::{
    db::Db,
    domain::PathId,
    http::{Caller, json_reply},
};
use warp::{http::StatusCode, reply::Response};

use super::{OrderError, order_id};
use crate::model;

/// Cancel a placed or confirmed order; inventory then releases its stock.
/// Cancelling a cancelled order answers with it again.
pub async fn cancel(id: PathId, db: Db, caller: Caller) -> Result<Response, OrderError> {
    let id = order_id(&id)?;
    let order = db
        .run(move |conn| -> Result<model::Order, OrderError> {
            let mut tx = conn.transaction()?;
            let row = tx
                .query_opt(
                    "SELECT user_id, status FROM orders WHERE id = $1 FOR UPDATE",
                    &[&id],
                )?
                .ok_or(OrderError::NotFound)?;
            let (owner, status): (uuid::Uuid, String) = (row.get(0), row.get(1));
            if owner != caller.claims.sub && !caller.is_admin() {
                return Err(OrderError::NotFound);
            }
            match status.as_str() {
                "PLACED" | "CONFIRMED" => {
                    tx.execute(
                        "UPDATE orders SET status = 'CANCELLED', updated_at = now() WHERE id = $1",
                        &[&id],
                    )?;
                    Event::OrderCancelled(OrderCancelled {
                        order_id: id,
                        user_id: owner,
                        reason: None,
                    })
                    .append(&mut tx)?;
                }
                "CANCELLED" => {}
                other => return Err(OrderError::InvalidState(other.to_lowercase())),
            }
            let order = model::load(&mut tx, id)?.ok_or(OrderError::NotFound)?;
            tx.commit()?;
            Ok(order)
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &order))
}
