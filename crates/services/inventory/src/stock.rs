//! Stock levels and the `stock-changed` events that announce them.

use postgres::GenericClient;
use teipsum_kit::events::{self, Envelope};
use uuid::Uuid;

/// Announce the level of `product_id` as it is now in this transaction.
pub fn announce(tx: &mut impl GenericClient, product_id: Uuid) -> Result<i64, postgres::Error> {
    let quantity: i64 = tx
        .query_opt(
            "SELECT quantity FROM inventory.inventory WHERE product_id = $1",
            &[&product_id],
        )?
        .map_or(0, |r| r.get(0));
    announce_level(tx, product_id, quantity)?;
    Ok(quantity)
}

/// Announce that `product_id` is at `quantity`, a level this transaction
/// has just written.
pub fn announce_level(
    tx: &mut impl GenericClient,
    product_id: Uuid,
    quantity: i64,
) -> Result<(), postgres::Error> {
    let event = Envelope::new(
        "inventory",
        "stock-changed",
        1,
        product_id,
        serde_json::json!({"product_id": product_id, "quantity": quantity}),
    );
    events::append(tx, "inventory-events", &event)
}

/// Units of `product_id` held by orders that are not cancelled.
pub fn reserved(tx: &mut impl GenericClient, product_id: Uuid) -> Result<i64, postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT coalesce(sum(quantity), 0)::BIGINT FROM inventory.reservations \
             WHERE product_id = $1 AND released_at IS NULL",
            &[&product_id],
        )?
        .get(0))
}
