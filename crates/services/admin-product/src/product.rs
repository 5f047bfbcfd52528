//! A stored product, as clients see it, and the events that describe it.

use serde::Serialize;
use teipsum_kit::events::Envelope;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Price;

/// The topic product events go to.
pub const TOPIC: &str = "product-events";

/// Version of the shape of the events' `data` (the envelope's `version`).
pub const DATA_VERSION: u32 = 1;

/// The columns [`Product::from_row`] reads, for `SELECT` and `RETURNING`.
pub const COLUMNS: &str = "id, name, description, sku, price_minor, currency, category, \
                           image_urls, active, version, created_at, updated_at";

/// A product as the API shows it (`Product` in docs/api.md).
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    /// Id (UUIDv7: ordered by creation).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// SKU.
    pub sku: String,
    /// Price.
    pub price: Price,
    /// Category slug.
    pub category: String,
    /// Image URLs.
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

    /// `product-created` (version 1) or `product-updated`, carrying the
    /// whole product so that consumers need no other source.
    pub fn event(&self, kind: &str) -> Envelope {
        Envelope::new(
            crate::SERVICE.name,
            kind,
            DATA_VERSION,
            self.id,
            serde_json::json!({
                "product_id": self.id,
                "version": self.version,
                "name": self.name,
                "description": self.description,
                "sku": self.sku,
                "price_minor": self.price.amount_minor,
                "currency": self.price.currency,
                "category": self.category,
                "image_urls": self.image_urls,
                "active": self.active,
            }),
        )
    }
}

/// `product-deleted` of `id` at `version` (the version the deletion made).
pub fn deleted_event(id: Uuid, version: i64) -> Envelope {
    Envelope::new(
        crate::SERVICE.name,
        "product-deleted",
        DATA_VERSION,
        id,
        serde_json::json!({"product_id": id, "version": version}),
    )
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
            Product::from_row(row).event("product-updated")
        };
        teipsum_kit::events::append(tx, TOPIC, &event)?;
    }
    Ok(rows.len() as u64)
}
