//! What the order service learns from other services: prices from
//! `product-events`, the fate of its orders from `inventory-events`.

use postgres::Transaction;
use teipsum_events::{Envelope, Event};
use teipsum_kit::events::HandleError;

/// Apply one event of [`teipsum_events::Subscription::ORDER`] inside the
/// consumer's transaction.
pub fn apply(tx: &mut Transaction<'_>, _: &Envelope, event: Event) -> Result<(), HandleError> {
    match event {
        Event::ProductCreated(p) | Event::ProductUpdated(p) => {
            // Versions only move forward: an old event arriving late changes nothing.
            tx.execute(
                "INSERT INTO products (id, version, name, price_minor, currency, active) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, name = excluded.name, \
                   price_minor = excluded.price_minor, currency = excluded.currency, active = excluded.active, deleted = false \
                 WHERE products.version < excluded.version",
                &[&p.product_id, &p.version, &p.name, &p.price_minor, &p.currency, &p.active],
            )?;
        }
        Event::ProductDeleted(p) => {
            tx.execute(
                "INSERT INTO products (id, version, name, price_minor, currency, active, deleted) VALUES ($1, $2, '', 0, 'EUR', false, true) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, active = false, deleted = true \
                 WHERE products.version < excluded.version",
                &[&p.product_id, &p.version],
            )?;
        }
        Event::StockReserved(r) => {
            let changed = tx.execute(
                "UPDATE orders SET status = 'CONFIRMED', updated_at = now() WHERE id = $1 AND status = 'PLACED'",
                &[&r.order_id],
            )?;
            if changed > 0 {
                tracing::info!(order_id = %r.order_id, "order confirmed");
            }
        }
        Event::ReservationRejected(r) => {
            let reason = format!("{} (product {})", r.reason, r.product_id);
            let changed = tx.execute(
                "UPDATE orders SET status = 'REJECTED', reason = $2, updated_at = now() WHERE id = $1 AND status = 'PLACED'",
                &[&r.order_id, &reason],
            )?;
            if changed > 0 {
                tracing::info!(order_id = %r.order_id, product_id = %r.product_id, reason = %r.reason, "order rejected");
            }
        }
        other => tracing::debug!(kind = %other.kind(), "not for the order service"),
    }
    Ok(())
}
