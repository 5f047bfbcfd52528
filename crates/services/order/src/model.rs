//! Orders as stored and as clients see them.

use std::collections::BTreeMap;

use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub product_id: Uuid,
    /// Its name when the order was placed.
    pub name: String,
    pub quantity: i32,
    /// Price of one unit when the order was placed.
    pub unit_price_minor: i64,
    /// `quantity × unit_price_minor`.
    pub line_total_minor: i64,
}

/// An order as its owner and admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// `PLACED`, `CONFIRMED`, `REJECTED`, `CANCELLED` or `EXPIRED`.
    #[schema(pattern = "^(PLACED|CONFIRMED|REJECTED|CANCELLED|EXPIRED)$")]
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

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "id, user_id, status, total_minor, currency, reason, created_at, updated_at";

fn from_row(row: &postgres::Row, items: Vec<Item>) -> Order {
    Order {
        id: row.get(0),
        user_id: row.get(1),
        status: row.get(2),
        items,
        total_minor: row.get(3),
        currency: row.get(4),
        reason: row.get(5),
        created_at: row.get(6),
        updated_at: row.get(7),
    }
}

/// The items of the orders `ids`, by order, each sorted by product: one
/// query however many orders there are.
fn items_of(
    client: &mut impl GenericClient,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, Vec<Item>>, postgres::Error> {
    let mut items: BTreeMap<Uuid, Vec<Item>> = BTreeMap::new();
    for r in client.query(
        "SELECT order_id, product_id, name, quantity, unit_price_minor, line_total_minor FROM order_items \
         WHERE order_id = ANY($1) ORDER BY order_id, product_id",
        &[&ids],
    )? {
        items.entry(r.get(0)).or_default().push(Item {
            product_id: r.get(1),
            name: r.get(2),
            quantity: r.get(3),
            unit_price_minor: r.get(4),
            line_total_minor: r.get(5),
        });
    }
    Ok(items)
}

/// Load order `id` with its items.
pub fn load(client: &mut impl GenericClient, id: Uuid) -> Result<Option<Order>, postgres::Error> {
    let Some(row) = client.query_opt(
        &format!("SELECT {COLUMNS} FROM orders WHERE id = $1"),
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let items = items_of(client, &[id])?.remove(&id).unwrap_or_default();
    Ok(Some(from_row(&row, items)))
}

/// Up to `limit` orders of `user_id` before `(after_time, after_id)`, newest
/// first, with their items: two queries, whatever the page size.
pub fn page(
    client: &mut impl GenericClient,
    user_id: Uuid,
    after: (OffsetDateTime, Uuid),
    limit: i64,
) -> Result<Vec<Order>, postgres::Error> {
    let rows = client.query(
        &format!(
            "SELECT {COLUMNS} FROM orders WHERE user_id = $1 AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ),
        &[&user_id, &after.0, &after.1, &limit],
    )?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let mut items = items_of(client, &ids)?;
    Ok(rows
        .iter()
        .map(|row| {
            let id: Uuid = row.get(0);
            from_row(row, items.remove(&id).unwrap_or_default())
        })
        .collect())
}
