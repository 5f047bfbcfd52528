//! Orders that inventory never answered in time expire.
//!
//! An order is `CONFIRMED` as soon as inventory's `stock-reserved` arrives,
//! so the only orders "not confirmed in time" are those still `PLACED` after
//! the spec's `confirm_within`: inventory was down, its answer was parked,
//! or the answer is stuck behind a backlog. Whatever inventory did or will
//! do with them, such an order ends `EXPIRED` and emits `order-cancelled`,
//! so any stock it holds (or will be given) is released by the same path as
//! a customer's cancel: never by touching inventory's database.

use std::time::Duration;

use teipsum_events::{Event, OrderCancelled};
use teipsum_kit::db::Db;
use uuid::Uuid;

use crate::metrics::Saga;

/// Most orders expired in one transaction.
const BATCH: i64 = 100;

/// Expire the orders `PLACED` longer than `confirm_within`; how long each
/// had waited since it was placed.
///
/// The rows are locked (`SKIP LOCKED`: replicas share the work), so an
/// expiry and a late `stock-reserved` (`... WHERE status = 'PLACED'`)
/// cannot both win.
pub fn expire(
    conn: &mut postgres::Client,
    confirm_within: Duration,
) -> Result<Vec<Duration>, postgres::Error> {
    let mut tx = conn.transaction()?;
    let stale = tx.query(
        "SELECT id, user_id, extract(epoch FROM now() - created_at)::float8 FROM orders \
         WHERE status = 'PLACED' AND created_at < now() - make_interval(secs => $1) \
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&confirm_within.as_secs_f64(), &BATCH],
    )?;
    let reason = format!("not confirmed within {} seconds", confirm_within.as_secs());
    for row in &stale {
        let (id, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
        tx.execute(
            "UPDATE orders SET status = 'EXPIRED', reason = $2, updated_at = now() WHERE id = $1",
            &[&id, &reason],
        )?;
        Event::OrderCancelled(OrderCancelled {
            order_id: id,
            user_id,
            reason: Some("expired".to_owned()),
        })
        .append(&mut tx)?;
        tracing::info!(order_id = %id, "order expired");
    }
    tx.commit()?;
    Ok(stale
        .iter()
        .map(|row| Duration::from_secs_f64(row.get(2)))
        .collect())
}

/// Sweep every `every` for as long as the service runs, observing each
/// expired order's wait in `saga`.
pub async fn run(db: Db, confirm_within: Duration, every: Duration, saga: Saga) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let saga = saga.clone();
        let swept = db
            .run(move |conn| -> Result<usize, anyhow::Error> {
                let mut total = 0;
                loop {
                    let expired = expire(conn, confirm_within)?;
                    total += expired.len();
                    for waited in &expired {
                        saga.completed("EXPIRED", *waited);
                    }
                    if expired.len() < BATCH as usize {
                        return Ok(total);
                    }
                }
            })
            .await;
        if let Err(e) = swept {
            tracing::warn!(
                error = format!("{e:#}"),
                "expiring orders failed; retrying at the next sweep"
            );
        }
    }
}
