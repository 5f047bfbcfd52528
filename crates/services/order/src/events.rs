//! What the order service learns from other services.

use postgres::Transaction;
use serde::Deserialize;
use teipsum_kit::events::{Envelope, HandleError};
use uuid::Uuid;

#[derive(Deserialize)]
struct ProductChanged {
    product_id: Uuid,
    version: i64,
    name: String,
    price_minor: i64,
    currency: String,
    active: bool,
}

#[derive(Deserialize)]
struct ProductDeleted {
    product_id: Uuid,
    version: i64,
}

#[derive(Deserialize)]
struct Reserved {
    order_id: Uuid,
}

#[derive(Deserialize)]
struct Rejected {
    order_id: Uuid,
    product_id: Uuid,
    reason: String,
}

/// The kinds of event [`apply`] acts on; the others on its topics are
/// acknowledged without touching the database.
pub const KINDS: &[&str] = &[
    "product-created",
    "product-updated",
    "product-deleted",
    "stock-reserved",
    "reservation-rejected",
];

/// Apply one event inside the consumer's transaction.
pub fn apply(tx: &mut Transaction<'_>, _topic: &str, event: &Envelope) -> Result<(), HandleError> {
    match event.kind.as_str() {
        "product-created" | "product-updated" => {
            let p: ProductChanged = serde_json::from_value(event.data.clone())?;
            // Versions only move forward: an old event arriving late changes nothing.
            tx.execute(
                "INSERT INTO products (id, version, name, price_minor, currency, active) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, name = excluded.name, \
                   price_minor = excluded.price_minor, currency = excluded.currency, active = excluded.active, deleted = false \
                 WHERE products.version < excluded.version",
                &[&p.product_id, &p.version, &p.name, &p.price_minor, &p.currency, &p.active],
            )?;
        }
        "product-deleted" => {
            let p: ProductDeleted = serde_json::from_value(event.data.clone())?;
            tx.execute(
                "INSERT INTO products (id, version, name, price_minor, currency, active, deleted) VALUES ($1, $2, '', 0, 'EUR', false, true) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, active = false, deleted = true \
                 WHERE products.version < excluded.version",
                &[&p.product_id, &p.version],
            )?;
        }
        "stock-reserved" => {
            let r: Reserved = serde_json::from_value(event.data.clone())?;
            tx.execute(
                "UPDATE orders SET status = 'CONFIRMED', updated_at = now() WHERE id = $1 AND status = 'PLACED'",
                &[&r.order_id],
            )?;
        }
        "reservation-rejected" => {
            let r: Rejected = serde_json::from_value(event.data.clone())?;
            let reason = format!("{} (product {})", r.reason, r.product_id);
            tx.execute(
                "UPDATE orders SET status = 'REJECTED', reason = $2, updated_at = now() WHERE id = $1 AND status = 'PLACED'",
                &[&r.order_id, &reason],
            )?;
        }
        _ => {}
    }
    Ok(())
}
