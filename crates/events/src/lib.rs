//! The contracts between TeIpsum's services, written once: the topics, the
//! kinds of event on each with their typed payloads and versions, which
//! service produces each kind and which services act on it.
//!
//! A producer builds an [`Event`] and [appends](Event::append) it to its
//! outbox; a consumer [subscribes](consumer) with the kinds its
//! [`Subscription`] names and gets each one decoded. The wire format is the
//! kit's [`Envelope`] (`{id, type, version, occurred_at, source, subject,
//! data}`), with `data` the payload's JSON. The kit moves envelopes and
//! knows nothing of the kinds; this crate is the typed layer on top.
//!
//! Tests of this crate tie it to the rest: every service's produces and
//! consumes in `config.ncl` are what [`Kind::producer`] and
//! [`Subscription`] say (`tests/plan.rs`), and docs/api.md's event table is
//! [`markdown_table`] (`tests/docs.rs`).
//!
//! A new kind of event: a variant of [`Kind`] and of [`Event`] with its
//! payload, its topic and producer, the subscriptions that act on it; the
//! compiler then lists every `match` to extend.

mod consume;
mod kind;
mod payload;
mod table;

pub use consume::{Apply, Batched, Subscription, consumer, consumer_batched};
pub use kind::{DecodeError, Event, Kind};
pub use payload::{
    OrderCancelled, OrderLine, OrderPlaced, Product, ProductDeleted, ReservationRejected,
    StockChanged, StockReserved, UserLogin, UserRegistered,
};
pub use table::markdown_table;
pub use teipsum_kit::events::Envelope;

/// The topics, as the spec names them.
pub mod topic {
    /// A new account exists (auth → user).
    pub const USER_REGISTERED: &str = "user-registered";
    /// Someone logged in (auth → user).
    pub const USER_LOGIN: &str = "user-login";
    /// Products created, updated and deleted (admin-product → catalog, order, inventory).
    pub const PRODUCT_EVENTS: &str = "product-events";
    /// Orders placed and cancelled (order → inventory).
    pub const ORDER_EVENTS: &str = "order-events";
    /// Stock levels and the answers to orders (inventory → catalog, order).
    pub const INVENTORY_EVENTS: &str = "inventory-events";
}

/// The services that produce or consume events, as the spec names them
/// (each service's `SERVICE.name`, and the `source` of its events).
pub mod service {
    /// Accounts and sessions.
    pub const AUTH: &str = "auth";
    /// Profiles.
    pub const USER: &str = "user";
    /// The public catalog.
    pub const CATALOG: &str = "catalog";
    /// Product administration.
    pub const ADMIN_PRODUCT: &str = "admin-product";
    /// Orders.
    pub const ORDER: &str = "order";
    /// Stock and reservations.
    pub const INVENTORY: &str = "inventory";
}

/// The topics `service` produces to: those of the kinds it emits, sorted.
pub fn produced_by(service: &str) -> Vec<&'static str> {
    let mut topics: Vec<&'static str> = Kind::ALL
        .iter()
        .filter(|k| k.producer() == service)
        .map(|k| k.topic())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    topics
}

/// The services that emit events on `topic`, sorted.
pub fn producers_of(topic: &str) -> Vec<&'static str> {
    let mut producers: Vec<&'static str> = Kind::ALL
        .iter()
        .filter(|k| k.topic() == topic)
        .map(|k| k.producer())
        .collect();
    producers.sort_unstable();
    producers.dedup();
    producers
}
