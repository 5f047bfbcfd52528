//! The `data` of each kind of event, as it travels. Field names and types
//! are the wire format: renaming one breaks every consumer and every event
//! already on a topic, so a change of shape is a new version of the kind.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `user-registered`: a new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The account's id (the event's subject).
    pub user_id: Uuid,
    /// Lowercased e-mail address.
    pub email: String,
    /// The name the user chose.
    pub display_name: String,
    /// `customer` (registration never makes an admin).
    pub role: String,
}

/// `user-login`: a successful login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLogin {
    /// Who logged in (the event's subject).
    pub user_id: Uuid,
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// `product-created` and `product-updated`: the whole product at `version`,
/// so that consumers need no other source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The product (the event's subject).
    pub product_id: Uuid,
    /// Bumped by every change; consumers keep the highest.
    pub version: i64,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Stock-keeping unit.
    pub sku: String,
    /// Price of one unit in minor units of `currency`.
    pub price_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Category slug.
    pub category: String,
    /// `https` image URLs.
    pub image_urls: Vec<String>,
    /// Whether shoppers may see and buy it.
    pub active: bool,
}

/// `product-deleted`: a tombstone at the version the deletion made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDeleted {
    /// The product (the event's subject).
    pub product_id: Uuid,
    /// The version of the deletion: older events about it are outdated.
    pub version: i64,
}

/// `order-placed`: an order asking inventory for its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order (the event's subject).
    pub order_id: Uuid,
    /// Who placed it.
    pub user_id: Uuid,
    /// What it asks for, one line per product.
    pub items: Vec<OrderLine>,
}

/// A line of [`OrderPlaced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// Units.
    pub quantity: i64,
}

/// `order-cancelled`: whatever inventory holds for the order goes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The order (the event's subject).
    pub order_id: Uuid,
    /// Whose it was.
    pub user_id: Uuid,
    /// `expired` when the confirmation window ran out; absent when the
    /// customer cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `stock-changed`: the units of a product that can still be sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChanged {
    /// The product (the event's subject).
    pub product_id: Uuid,
    /// Available units (never negative).
    pub quantity: i64,
}

/// `stock-reserved`: every line of the order is held for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    /// The order (the event's subject).
    pub order_id: Uuid,
}

/// `reservation-rejected`: nothing is held for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRejected {
    /// The order (the event's subject).
    pub order_id: Uuid,
    /// The first product that could not be reserved.
    pub product_id: Uuid,
    /// `insufficient stock`, `product deleted`, `order cancelled`, ...
    pub reason: String,
}
