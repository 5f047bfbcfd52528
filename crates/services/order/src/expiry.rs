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

/// Most orders expired in one transaction.
const BATCH: i64 = 100;

/// Expire the orders `PLACED` longer than `confirm_within`; how many.
///
/// The rows are locked (`SKIP LOCKED`: replicas share the work), so an
/// expiry and a late `stock-reserved` (`... WHERE status = 'PLACED'`)
/// cannot both win.
pub fn expire(
    conn: &mut postgres::Client,
    confirm_within: Duration,
) -> Result<usize, postgres::Error> {
    let mut tx = conn.transaction()?;
    let stale = tx.query(
        "SELECT id, user_id FROM orders \
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
    Ok(stale.len())
}

/// Sweep every `every` for as long as the service runs.
pub async fn run(db: Db, confirm_within: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let swept = db
            .run(move |conn| -> Result<usize, anyhow::Error> {
                let mut total = 0;
                loop {
                    let n = expire(conn, confirm_within)?;
                    total += n;
                    if n < BATCH as usize {
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
