//! Orders as stored and as clients see them.

use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A line of an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// Product.
    pub product_id: Uuid,
    /// Its name when the order was placed.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// Price of one unit when the order was placed.
    pub unit_price_minor: i64,
    /// `quantity × unit_price_minor`.
    pub line_total_minor: i64,
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// Id.
    pub id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// `PLACED`, `CONFIRMED`, `REJECTED` or `CANCELLED`.
    pub status: String,
    /// Lines, by product.
    pub items: Vec<Item>,
    /// Sum of the lines.
    pub total_minor: i64,
    /// ISO 4217 currency of every amount.
    pub currency: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// When it was placed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last status change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Load order `id` with its items.
pub fn load(client: &mut impl GenericClient, id: Uuid) -> Result<Option<Order>, postgres::Error> {
    let Some(row) = client.query_opt(
        "SELECT id, user_id, status, total_minor, currency, reason, created_at, updated_at FROM orders WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let items = client
        .query(
            "SELECT product_id, name, quantity, unit_price_minor, line_total_minor FROM order_items \
             WHERE order_id = $1 ORDER BY product_id",
            &[&id],
        )?
        .iter()
        .map(|r| Item {
            product_id: r.get(0),
            name: r.get(1),
            quantity: r.get(2),
            unit_price_minor: r.get(3),
            line_total_minor: r.get(4),
        })
        .collect();
    Ok(Some(Order {
        id: row.get(0),
        user_id: row.get(1),
        status: row.get(2),
        items,
        total_minor: row.get(3),
        currency: row.get(4),
        reason: row.get(5),
        created_at: row.get(6),
        updated_at: row.get(7),
    }))
}
