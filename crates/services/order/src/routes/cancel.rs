//! `POST /api/orders/{id}/cancel`.

use std::time::Duration;

use teipsum_events::{Event, OrderCancelled};
use teipsum_kit::{
    db::Db,
    domain::PathId,
    http::{Caller, json_reply},
};
use warp::{http::StatusCode, reply::Response};

use super::{OrderError, order_id};
use crate::{metrics::Saga, model};

/// Cancel a placed or confirmed order; inventory then releases its stock.
/// Cancelling a cancelled order answers with it again.
#[utoipa::path(
    post,
    path = "/api/orders/{id}/cancel",
    tag = "order",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The order's id")),
    responses(
        (status = 200, description = "The order, `CANCELLED`", body = crate::model::Order),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such order, or not the caller's", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`INVALID_STATE`: it is rejected or expired", body = teipsum_kit::http::ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: nginx's placement rate limit, which counts every `POST` under `/api/orders/`", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn cancel(
    id: PathId,
    db: Db,
    caller: Caller,
    saga: Saga,
) -> Result<Response, OrderError> {
    let id = order_id(&id)?;
    let (order, waited) = db
        .run(move |conn| -> Result<_, OrderError> {
            let mut tx = conn.transaction()?;
            let row = tx
                .query_opt(
                    "SELECT user_id, status, greatest(extract(epoch FROM now() - created_at), 0)::float8 \
                     FROM orders WHERE id = $1 FOR UPDATE",
                    &[&id],
                )?
                .ok_or(OrderError::NotFound)?;
            let (owner, status): (uuid::Uuid, String) = (row.get(0), row.get(1));
            // Cancelling a placed order completes its saga.
            let waited = (status == "PLACED").then(|| Duration::from_secs_f64(row.get(2)));
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
            Ok((order, waited))
        })
        .await?;
    if let Some(waited) = waited {
        saga.completed("CANCELLED", waited);
    }
    Ok(json_reply(StatusCode::OK, &order))
}
