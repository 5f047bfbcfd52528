//! Applying product and stock events to the read model.
//!
//! The kit runs [`apply`] inside the transaction that records the event id,
//! so a redelivered event is skipped before it gets here. What the ledger
//! cannot catch, this module does: an event that arrives after a newer one
//! about the same product (a replay with new ids, a reordering) loses to
//! the version guard (products) or the `occurred_at` guard (stock).

use postgres::Transaction;
use teipsum_events::{Envelope, Event};
use teipsum_kit::events::HandleError;
use uuid::Uuid;

fn permanent(message: String) -> HandleError {
    HandleError::Permanent(anyhow::anyhow!(message))
}

/// Refuse a product version that no producer makes.
fn positive(version: i64) -> Result<(), HandleError> {
    if version < 1 {
        return Err(permanent(format!("version {version} is not positive")));
    }
    Ok(())
}

/// Apply one event of [`teipsum_events::Subscription::CATALOG`] inside the
/// consumer's transaction.
pub fn apply(
    tx: &mut Transaction<'_>,
    envelope: &Envelope,
    event: Event,
) -> Result<(), HandleError> {
    match event {
        Event::ProductCreated(data) | Event::ProductUpdated(data) => {
            positive(data.version)?;
            // The guard is the WHERE of the conflict branch: only a newer
            // version replaces the row (a tombstone included).
            tx.execute(
                "INSERT INTO products AS p (id, version, deleted, name, description, sku, price_minor, \
                 currency, category, image_urls, active, created_at, updated_at) \
                 VALUES ($1, $2, false, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = false, \
                 name = excluded.name, description = excluded.description, sku = excluded.sku, \
                 price_minor = excluded.price_minor, currency = excluded.currency, \
                 category = excluded.category, image_urls = excluded.image_urls, \
                 active = excluded.active, updated_at = excluded.updated_at \
                 WHERE p.version < excluded.version",
                &[
                    &data.product_id,
                    &data.version,
                    &data.name,
                    &data.description,
                    &data.sku,
                    &data.price_minor,
                    &data.currency,
                    &data.category,
                    &data.image_urls,
                    &data.active,
                    &envelope.occurred_at,
                ],
            )?;
            first_seen(tx, data.product_id, envelope)?;
        }
        Event::ProductDeleted(data) => {
            positive(data.version)?;
            tx.execute(
                "INSERT INTO products AS p (id, version, deleted, created_at, updated_at) \
                 VALUES ($1, $2, true, $3, $3) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = true, \
                 name = NULL, description = NULL, sku = NULL, price_minor = NULL, currency = NULL, \
                 category = NULL, image_urls = NULL, active = NULL, updated_at = excluded.updated_at \
                 WHERE p.version < excluded.version",
                &[&data.product_id, &data.version, &envelope.occurred_at],
            )?;
            first_seen(tx, data.product_id, envelope)?;
        }
        Event::StockChanged(data) => {
            if data.quantity < 0 {
                return Err(permanent(format!(
                    "stock of {} is negative ({})",
                    data.product_id, data.quantity
                )));
            }
            // stock-changed carries no version; inventory emits a product's
            // levels in order on one partition, so the later occurrence wins.
            tx.execute(
                "INSERT INTO stock AS s (product_id, quantity, as_of) VALUES ($1, $2, $3) \
                 ON CONFLICT (product_id) DO UPDATE SET quantity = excluded.quantity, as_of = excluded.as_of \
                 WHERE s.as_of <= excluded.as_of",
                &[&data.product_id, &data.quantity, &envelope.occurred_at],
            )?;
        }
        other => tracing::debug!(kind = %other.kind(), "not for the catalog"),
    }
    Ok(())
}

/// Keep the earliest moment the product was heard of as its creation time,
/// whichever of its events arrived first.
fn first_seen(tx: &mut Transaction<'_>, id: Uuid, envelope: &Envelope) -> Result<(), HandleError> {
    tx.execute(
        "UPDATE products SET created_at = $2 WHERE id = $1 AND created_at > $2",
        &[&id, &envelope.occurred_at],
    )?;
    Ok(())
}
