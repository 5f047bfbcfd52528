//! A stored product, as clients see it, and the events that describe it.

use serde::Serialize;
use teipsum_events::{Event, ProductDeleted};
use teipsum_kit::domain::Price;
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns [`Product::from_row`] reads, for `SELECT` and `RETURNING`.
pub const COLUMNS: &str = "id, name, description, sku, price_minor, currency, category, \
                           image_urls, active, version, created_at, updated_at";

/// A product as the API shows it (`Product` in docs/api.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// Id (UUIDv7: ordered by creation).
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub price: Price,
    pub category: String,
    pub image_urls: Vec<String>,
    /// Whether shoppers see it.
    pub active: bool,
    /// Bumped by every change; the ETag.
    pub version: i64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Product {
    /// From a row of [`COLUMNS`].
    pub fn from_row(row: &postgres::Row) -> Self {
        Product {
            id: row.get("id"),
            name: row.get("name"),
            description: row.get("description"),
            sku: row.get("sku"),
            price: Price {
                amount_minor: row.get("price_minor"),
                currency: row.get("currency"),
            },
            category: row.get("category"),
            image_urls: row.get("image_urls"),
            active: row.get("active"),
            version: row.get("version"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }

    /// The strong entity tag of this version: `"3"`.
    pub fn etag(&self) -> String {
        etag(self.version)
    }

    /// The whole product as events carry it, so that consumers need no
    /// other source: `Event::ProductCreated` (version 1) or `ProductUpdated`
    /// wrap it.
    pub fn payload(&self) -> teipsum_events::Product {
        teipsum_events::Product {
            product_id: self.id,
            version: self.version,
            name: self.name.clone(),
            description: self.description.clone(),
            sku: self.sku.clone(),
            price_minor: self.price.amount_minor,
            currency: self.price.currency.clone(),
            category: self.category.clone(),
            image_urls: self.image_urls.clone(),
            active: self.active,
        }
    }
}

/// `product-deleted` of `id` at `version` (the version the deletion made).
pub fn deleted_event(id: Uuid, version: i64) -> Event {
    Event::ProductDeleted(ProductDeleted {
        product_id: id,
        version,
    })
}

/// The strong entity tag of `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `teipsum-admin-product events announce`: one event per product as it is
/// now (`product-updated` carrying the whole product, or `product-deleted`
/// for a tombstone), for consumers rebuilding their read models after
/// `product-events` lost its history. Consumers upsert on a newer version and
/// ignore the same version again, so this is safe to run at any time. The
/// rows are held (`FOR SHARE`) until the transaction ends, so no change can
/// slip between what is read and what is announced.
pub fn announce_all(tx: &mut postgres::Transaction<'_>) -> Result<u64, postgres::Error> {
    let rows = tx.query(
        &format!("SELECT {COLUMNS}, deleted_at IS NOT NULL AS deleted FROM products ORDER BY id FOR SHARE"),
        &[],
    )?;
    for row in &rows {
        let event = if row.get("deleted") {
            deleted_event(row.get("id"), row.get("version"))
        } else {
            Event::ProductUpdated(Product::from_row(row).payload())
        };
        event.append(tx)?;
    }
    Ok(rows.len() as u64)
}
