//! The saga's inventory side: reserve on `order-placed`, release on
//! `order-cancelled`, keep the product list from `product-events`.
//!
//! Never oversell: a transaction of the consumer (one event, or a batch of
//! them) first locks every stock row its events may change, in product-id
//! order, so that two transactions naming the same products in opposite
//! orders cannot deadlock, and reads their levels. Each order is then
//! decided on those levels, all its lines or none; the transaction writes
//! each product's level once at its end, as a relative change that the
//! table's `CHECK (quantity >= 0)` backs, and announces it (one
//! `stock-changed` per product and transaction: consumers keep the latest
//! level). A batch of 256 orders of five products so updates five rows,
//! not 256 (PostgreSQL keeps every version a transaction writes of a row,
//! and each update of it walks them), and needs no savepoint per order.
//!
//! An order of a deleted product is rejected. A cancel is remembered even
//! when nothing was reserved yet, so that an `order-placed` arriving after
//! its `order-cancelled` (possible once `order-events` gains partitions)
//! reserves nothing.

use std::collections::BTreeMap;

use postgres::{Transaction, types::Type};
use teipsum_events::{Batched, Envelope, Event, OrderPlaced, ReservationRejected, StockReserved};
use teipsum_kit::events::HandleError;
use uuid::Uuid;

use crate::stock;

/// A product's stock in the open transaction: its level when locked, and
/// what the transaction's orders and cancels have changed of it since.
#[derive(Debug, Clone, Copy)]
struct Level {
    locked: i64,
    change: i64,
}

impl Level {
    fn now(self) -> i64 {
        self.locked + self.change
    }
}

/// The consumer's handler: the levels the open transaction holds locked.
#[derive(Debug, Default)]
pub struct Reserver {
    levels: BTreeMap<Uuid, Level>,
    /// Products whose level the transaction announces at its end.
    touched: Vec<Uuid>,
}

impl Batched for Reserver {
    /// Lock, in product-id order, every stock row `events` may change: the
    /// products their orders name and those their cancelled orders hold.
    /// Each order then takes only rows this transaction already holds, so
    /// two transactions (two replicas, or a batch and an admin's
    /// adjustment) queue behind each other instead of deadlocking.
    fn begin(&mut self, tx: &mut Transaction<'_>, events: &[Event]) -> Result<(), HandleError> {
        self.forget();
        let mut products: Vec<Uuid> = Vec::new();
        let mut cancelled: Vec<Uuid> = Vec::new();
        for event in events {
            match event {
                Event::OrderPlaced(order) => {
                    products.extend(order.items.iter().map(|l| l.product_id))
                }
                Event::OrderCancelled(c) => cancelled.push(c.order_id),
                _ => {}
            }
        }
        if products.is_empty() && cancelled.is_empty() {
            return Ok(());
        }
        // The lock is taken row by row in the ORDER BY's order.
        let rows = tx.query_typed(
            "SELECT product_id, quantity FROM inventory.inventory WHERE product_id = ANY($1) \
                OR product_id IN (SELECT product_id FROM inventory.reservations \
                                  WHERE order_id = ANY($2) AND released_at IS NULL) \
             ORDER BY product_id FOR UPDATE",
            &[
                (&products, Type::UUID_ARRAY),
                (&cancelled, Type::UUID_ARRAY),
            ],
        )?;
        for row in rows {
            self.levels.insert(
                row.get(0),
                Level {
                    locked: row.get(1),
                    change: 0,
                },
            );
        }
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &mut Transaction<'_>,
        _: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        match event {
            Event::OrderPlaced(order) => self.reserve(tx, order),
            Event::OrderCancelled(cancelled) => self.release(tx, cancelled.order_id),
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

    /// Write every level the transaction changed, each once and relative to
    /// what it was (the CHECK refuses a level below zero), and announce it.
    fn end(&mut self, tx: &mut Transaction<'_>) -> Result<(), HandleError> {
        let (products, changes): (Vec<Uuid>, Vec<i64>) = self
            .levels
            .iter()
            .filter(|(_, l)| l.change != 0)
            .map(|(p, l)| (*p, l.change))
            .unzip();
        if !products.is_empty() {
            let written = tx.query_typed(
                "UPDATE inventory.inventory AS i SET quantity = i.quantity + c.change \
                 FROM unnest($1::uuid[], $2::int8[]) AS c(product_id, change) \
                 WHERE i.product_id = c.product_id RETURNING i.product_id, i.quantity",
                &[(&products, Type::UUID_ARRAY), (&changes, Type::INT8_ARRAY)],
            )?;
            // The rows are locked since `begin`: anything else is a bug, and
            // the transaction must not commit.
            for row in &written {
                let product: Uuid = row.get(0);
                let level: i64 = row.get(1);
                let expected = self.levels.get(&product).map(|l| l.now());
                if expected != Some(level) {
                    return Err(HandleError::Transient(anyhow::anyhow!(
                        "stock of {product} is {level}, not the {expected:?} this transaction computed"
                    )));
                }
            }
            if written.len() != products.len() {
                return Err(HandleError::Transient(anyhow::anyhow!(
                    "{} of {} stock rows written",
                    written.len(),
                    products.len()
                )));
            }
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for product_id in touched {
            let level = self.levels.get(&product_id).map_or(0, |l| l.now());
            stock::announce_level(tx, product_id, level)?;
        }
        self.forget();
        Ok(())
    }

    fn forget(&mut self) {
        self.levels.clear();
        self.touched.clear();
    }
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

impl Reserver {
    /// Reserve every line of the order, or none.
    ///
    /// This runs for every order, so its statements are typed (parse, bind
    /// and execute in one round trip) and none is sent that can be spared:
    /// the levels are those `begin` read, and `end` writes them.
    fn reserve(&mut self, tx: &mut Transaction<'_>, order: OrderPlaced) -> Result<(), HandleError> {
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
            products.iter().min().map(|p| (*p, "order cancelled"))
        } else {
            earlier
                .get::<_, Option<Uuid>>(4)
                .map(|p| (p, "product deleted"))
        };
        if let Some((product_id, reason)) = refused {
            return reject(tx, order_id, product_id, reason);
        }
        // What the order takes of each product, its lines in product-id
        // order (a product named twice takes both lines' units): the first
        // line that does not fit refuses the whole order.
        let mut lines = order.items;
        lines.sort_by_key(|l| l.product_id);
        let mut takes: BTreeMap<Uuid, i64> = BTreeMap::new();
        for line in &lines {
            if line.quantity <= 0 {
                return reject(tx, order_id, line.product_id, "invalid quantity");
            }
            let taken = takes.entry(line.product_id).or_default();
            *taken += line.quantity;
            let fits = self
                .levels
                .get(&line.product_id)
                .is_some_and(|level| level.now() >= *taken);
            if !fits {
                return reject(tx, order_id, line.product_id, "insufficient stock");
            }
        }
        let (products, quantities): (Vec<Uuid>, Vec<i64>) =
            takes.iter().map(|(p, q)| (*p, *q)).unzip();
        tx.execute_typed(
            "INSERT INTO inventory.reservations (order_id, product_id, quantity) \
             SELECT $1, unnest($2::uuid[]), unnest($3::int8[])",
            &[
                (&order_id, Type::UUID),
                (&products, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
            ],
        )?;
        for (product_id, quantity) in takes {
            if let Some(level) = self.levels.get_mut(&product_id) {
                level.change -= quantity;
            }
            self.touched.push(product_id);
        }
        tracing::info!(%order_id, lines = lines.len(), "stock reserved");
        reserved(tx, order_id)
    }

    /// Give back exactly what the order holds, once, and remember the
    /// cancel so that a placement seen after it reserves nothing.
    fn release(&mut self, tx: &mut Transaction<'_>, order_id: Uuid) -> Result<(), HandleError> {
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
            let Some(level) = self.levels.get_mut(product_id) else {
                // `begin` locked every product the order holds: a stock row
                // deleted since cannot be given back to.
                return Err(HandleError::Permanent(anyhow::anyhow!(
                    "order {order_id} holds {quantity} of {product_id}, which has no stock row"
                )));
            };
            level.change += quantity;
            self.touched.push(*product_id);
        }
        tracing::info!(%order_id, lines = lines.len(), "stock released");
        Ok(())
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
