//! Stock levels and the `stock-changed` events that announce them.

use postgres::GenericClient;
use teipsum_events::{Event, StockChanged};
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
    Event::StockChanged(StockChanged {
        product_id,
        quantity,
    })
    .append(tx)
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

/// `teipsum-inventory events announce`: a `stock-changed` for every level as
/// it is now, for consumers rebuilding their read models after
/// `inventory-events` lost its history. The levels are held (`FOR SHARE`)
/// until the transaction ends, so no reservation slips between what is read
/// and what is announced; consumers keep the latest level, so this is safe
/// to run at any time.
pub fn announce_all(tx: &mut postgres::Transaction<'_>) -> Result<u64, postgres::Error> {
    let rows = tx.query(
        "SELECT product_id, quantity FROM inventory.inventory ORDER BY product_id FOR SHARE",
        &[],
    )?;
    for row in &rows {
        announce_level(tx, row.get(0), row.get(1))?;
    }
    Ok(rows.len() as u64)
}
