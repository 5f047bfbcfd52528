//! The saga's inventory side: reserve on `order-placed`, release on
//! `order-cancelled`, keep the product list from `product-events`.
//!
//! Never oversell: each line is a guarded decrement
//! (`... SET quantity = quantity - n WHERE quantity >= n`), backed by
//! `CHECK (quantity >= 0)`; rows are taken in product-id order so that two
//! orders of the same products in opposite orders cannot deadlock; a
//! savepoint makes the lines all-or-nothing.
//!
//! An order of a deleted product is rejected. A cancel is remembered even
//! when nothing was reserved yet, so that an `order-placed` arriving after
//! its `order-cancelled` (possible once `order-events` gains partitions)
//! reserves nothing.

use postgres::{Transaction, types::Type};
use teipsum_events::{Envelope, Event, OrderPlaced, ReservationRejected, StockReserved};
use teipsum_kit::events::HandleError;
use uuid::Uuid;

use crate::stock;

/// Apply one event of [`teipsum_events::Subscription::INVENTORY`] inside
/// the consumer's transaction.
pub fn apply(tx: &mut Transaction<'_>, _: &Envelope, event: Event) -> Result<(), HandleError> {
    match event {
        Event::OrderPlaced(order) => reserve(tx, order),
        Event::OrderCancelled(cancelled) => release(tx, cancelled.order_id),
        Event::ProductCreated(p) | Event::ProductUpdated(p) => {
            tx.execute(
                "INSERT INTO inventory.products (product_id, version, name) VALUES ($1, $2, $3) \
                 ON CONFLICT (product_id) DO UPDATE SET version = excluded.version, name = excluded.name, deleted = false \
                 WHERE inventory.products.version < excluded.version",
                &[&p.product_id, &p.version, &p.name],
            )?;
            Ok(())
        }
        Event::ProductDeleted(p) => {
            tx.execute(
                "INSERT INTO inventory.products (product_id, version, name, deleted) VALUES ($1, $2, '', true) \
                 ON CONFLICT (product_id) DO UPDATE SET version = excluded.version, deleted = true \
                 WHERE inventory.products.version < excluded.version",
                &[&p.product_id, &p.version],
            )?;
            Ok(())
        }
        other => {
            tracing::debug!(kind = %other.kind(), "not for inventory");
            Ok(())
        }
    }
}

/// Lock, in product-id order, every stock row a batch of events may change:
/// the products its orders name and those its cancelled orders hold. Each
/// order of the batch then takes only rows its transaction already holds,
/// so two batches (two replicas, or a batch and an admin's adjustment)
/// queue behind each other instead of deadlocking. Each order stays
/// all-or-nothing inside the batch through its own savepoint.
pub fn lock_batch(tx: &mut Transaction<'_>, events: &[Event]) -> Result<(), HandleError> {
    let mut products: Vec<Uuid> = Vec::new();
    let mut cancelled: Vec<Uuid> = Vec::new();
    for event in events {
        match event {
            Event::OrderPlaced(order) => products.extend(order.items.iter().map(|l| l.product_id)),
            Event::OrderCancelled(c) => cancelled.push(c.order_id),
            _ => {}
        }
    }
    if products.is_empty() && cancelled.is_empty() {
        return Ok(());
    }
    // The lock is taken row by row in the ORDER BY's order.
    tx.execute_typed(
        "SELECT 1 FROM inventory.inventory WHERE product_id = ANY($1) \
            OR product_id IN (SELECT product_id FROM inventory.reservations \
                              WHERE order_id = ANY($2) AND released_at IS NULL) \
         ORDER BY product_id FOR UPDATE",
        &[
            (&products, Type::UUID_ARRAY),
            (&cancelled, Type::UUID_ARRAY),
        ],
    )?;
    Ok(())
}

/// Tell the order service what became of its order.
fn answer(tx: &mut Transaction<'_>, event: Event) -> Result<(), HandleError> {
    event.append(tx)?;
    Ok(())
}

/// The order is held.
fn reserved(tx: &mut Transaction<'_>, order_id: Uuid) -> Result<(), HandleError> {
    answer(tx, Event::StockReserved(StockReserved { order_id }))
}

/// Reserve every line of the order, or none.
///
/// This runs for every order, so its statements are typed (parse, bind and
/// execute in one round trip) and none is sent that can be spared.
fn reserve(tx: &mut Transaction<'_>, mut order: OrderPlaced) -> Result<(), HandleError> {
    let order_id = order.order_id;
    let products: Vec<Uuid> = order.items.iter().map(|l| l.product_id).collect();
    // Already answered (a replay with another event id): answer the same.
    // Else: cancelled before it was seen, or naming a deleted product.
    let earlier = tx.query_typed_one(
        "SELECT EXISTS (SELECT 1 FROM inventory.reservations WHERE order_id = $1), \
                (SELECT product_id FROM inventory.rejections WHERE order_id = $1), \
                (SELECT reason FROM inventory.rejections WHERE order_id = $1), \
                EXISTS (SELECT 1 FROM inventory.cancellations WHERE order_id = $1), \
                (SELECT product_id FROM inventory.products WHERE product_id = ANY($2) AND deleted ORDER BY product_id LIMIT 1)",
        &[(&order_id, Type::UUID), (&products, Type::UUID_ARRAY)],
    )?;
    if earlier.get::<_, bool>(0) {
        return reserved(tx, order_id);
    }
    if let Some(product_id) = earlier.get::<_, Option<Uuid>>(1) {
        return answer(
            tx,
            Event::ReservationRejected(ReservationRejected {
                order_id,
                product_id,
                reason: earlier.get(2),
            }),
        );
    }
    let refused = if earlier.get::<_, bool>(3) {
        order
            .items
            .iter()
            .map(|l| l.product_id)
            .min()
            .map(|p| (p, "order cancelled"))
    } else {
        earlier
            .get::<_, Option<Uuid>>(4)
            .map(|p| (p, "product deleted"))
    };
    if let Some((product_id, reason)) = refused {
        return reject(tx, order_id, product_id, reason);
    }
    // A fixed lock order: product id.
    order.items.sort_by_key(|l| l.product_id);
    let mut attempt = tx.savepoint("reserve")?;
    let mut short = None;
    // The level each decrement left, to announce without reading it again.
    let mut levels: Vec<(Uuid, i64)> = Vec::with_capacity(order.items.len());
    for line in &order.items {
        if line.quantity <= 0 {
            short = Some((line.product_id, "invalid quantity"));
            break;
        }
        let taken = attempt.query_typed_opt(
            "UPDATE inventory.inventory SET quantity = quantity - $2 \
             WHERE product_id = $1 AND quantity >= $2 RETURNING quantity",
            &[(&line.product_id, Type::UUID), (&line.quantity, Type::INT8)],
        )?;
        let Some(left) = taken else {
            short = Some((line.product_id, "insufficient stock"));
            break;
        };
        attempt.execute_typed(
            "INSERT INTO inventory.reservations (order_id, product_id, quantity) VALUES ($1, $2, $3)",
            &[
                (&order_id, Type::UUID),
                (&line.product_id, Type::UUID),
                (&line.quantity, Type::INT8),
            ],
        )?;
        // Lines are sorted: a product named twice updates its last level.
        match levels.last_mut() {
            Some((product, level)) if *product == line.product_id => *level = left.get(0),
            _ => levels.push((line.product_id, left.get(0))),
        }
    }
    match short {
        Some((product_id, reason)) => {
            attempt.rollback()?;
            reject(tx, order_id, product_id, reason)
        }
        None => {
            attempt.commit()?;
            for (product_id, level) in levels {
                stock::announce_level(tx, product_id, level)?;
            }
            tracing::info!(%order_id, lines = order.items.len(), "stock reserved");
            reserved(tx, order_id)
        }
    }
}

/// Refuse the order for `reason`, remembered for redeliveries.
fn reject(
    tx: &mut Transaction<'_>,
    order_id: Uuid,
    product_id: Uuid,
    reason: &str,
) -> Result<(), HandleError> {
    tx.execute_typed(
        "INSERT INTO inventory.rejections (order_id, product_id, reason) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[
            (&order_id, Type::UUID),
            (&product_id, Type::UUID),
            (&reason, Type::TEXT),
        ],
    )?;
    tracing::info!(%order_id, %product_id, reason, "reservation rejected");
    answer(
        tx,
        Event::ReservationRejected(ReservationRejected {
            order_id,
            product_id,
            reason: reason.to_owned(),
        }),
    )
}

/// Give back exactly what the order holds, once, and remember the cancel
/// so that a placement seen after it reserves nothing.
fn release(tx: &mut Transaction<'_>, order_id: Uuid) -> Result<(), HandleError> {
    tx.execute(
        "INSERT INTO inventory.cancellations (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&order_id],
    )?;
    let held = tx.query(
        "UPDATE inventory.reservations SET released_at = now() \
         WHERE order_id = $1 AND released_at IS NULL RETURNING product_id, quantity",
        &[&order_id],
    )?;
    let mut lines: Vec<(Uuid, i64)> = held.iter().map(|r| (r.get(0), r.get(1))).collect();
    lines.sort();
    for (product_id, quantity) in &lines {
        tx.execute(
            "UPDATE inventory.inventory SET quantity = quantity + $2 WHERE product_id = $1",
            &[product_id, quantity],
        )?;
        stock::announce(tx, *product_id)?;
    }
    tracing::info!(%order_id, lines = lines.len(), "stock released");
    Ok(())
}
