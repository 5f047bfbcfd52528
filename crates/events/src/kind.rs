//! The kinds of event and the typed events themselves.

use std::fmt;

use postgres::GenericClient;
use serde::{Serialize, de::DeserializeOwned};
use teipsum_kit::events::{self, Envelope, HandleError};
use uuid::Uuid;

use crate::{payload::*, service, topic};

/// A kind of event: its `type` on the wire, its topic, its producer and
/// the version of its payload's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// [`UserRegistered`].
    UserRegistered,
    /// [`UserLogin`].
    UserLogin,
    /// [`Product`], at version 1.
    ProductCreated,
    /// [`Product`], at a later version (or announced again).
    ProductUpdated,
    /// [`ProductDeleted`].
    ProductDeleted,
    /// [`OrderPlaced`].
    OrderPlaced,
    /// [`OrderCancelled`].
    OrderCancelled,
    /// [`StockChanged`].
    StockChanged,
    /// [`StockReserved`].
    StockReserved,
    /// [`ReservationRejected`].
    ReservationRejected,
}

impl Kind {
    /// Every kind, in the order of docs/api.md's table.
    pub const ALL: [Kind; 10] = [
        Kind::UserRegistered,
        Kind::UserLogin,
        Kind::ProductCreated,
        Kind::ProductUpdated,
        Kind::ProductDeleted,
        Kind::OrderPlaced,
        Kind::OrderCancelled,
        Kind::StockChanged,
        Kind::StockReserved,
        Kind::ReservationRejected,
    ];

    /// The envelope's `type` (`order-placed`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::UserRegistered => "user-registered",
            Kind::UserLogin => "user-login",
            Kind::ProductCreated => "product-created",
            Kind::ProductUpdated => "product-updated",
            Kind::ProductDeleted => "product-deleted",
            Kind::OrderPlaced => "order-placed",
            Kind::OrderCancelled => "order-cancelled",
            Kind::StockChanged => "stock-changed",
            Kind::StockReserved => "stock-reserved",
            Kind::ReservationRejected => "reservation-rejected",
        }
    }

    /// The topic events of this kind go to.
    pub const fn topic(self) -> &'static str {
        match self {
            Kind::UserRegistered => topic::USER_REGISTERED,
            Kind::UserLogin => topic::USER_LOGIN,
            Kind::ProductCreated | Kind::ProductUpdated | Kind::ProductDeleted => {
                topic::PRODUCT_EVENTS
            }
            Kind::OrderPlaced | Kind::OrderCancelled => topic::ORDER_EVENTS,
            Kind::StockChanged | Kind::StockReserved | Kind::ReservationRejected => {
                topic::INVENTORY_EVENTS
            }
        }
    }

    /// The one service that emits it (the envelope's `source`).
    pub const fn producer(self) -> &'static str {
        match self {
            Kind::UserRegistered | Kind::UserLogin => service::AUTH,
            Kind::ProductCreated | Kind::ProductUpdated | Kind::ProductDeleted => {
                service::ADMIN_PRODUCT
            }
            Kind::OrderPlaced | Kind::OrderCancelled => service::ORDER,
            Kind::StockChanged | Kind::StockReserved | Kind::ReservationRejected => {
                service::INVENTORY
            }
        }
    }

    /// The version of the payload's shape this build writes and reads. A
    /// change of shape bumps it; consumers are deployed before producers.
    pub const fn version(self) -> u32 {
        match self {
            Kind::UserRegistered
            | Kind::UserLogin
            | Kind::ProductCreated
            | Kind::ProductUpdated
            | Kind::ProductDeleted
            | Kind::OrderPlaced
            | Kind::OrderCancelled
            | Kind::StockChanged
            | Kind::StockReserved
            | Kind::ReservationRejected => 1,
        }
    }

    /// The payload's fields as docs/api.md shows them (`?`: may be absent),
    /// and a remark, if any.
    pub const fn fields(self) -> (&'static [&'static str], &'static str) {
        const PRODUCT: &[&str] = &[
            "product_id",
            "version",
            "name",
            "description",
            "sku",
            "price_minor",
            "currency",
            "category",
            "image_urls",
            "active",
        ];
        match self {
            Kind::UserRegistered => (&["user_id", "email", "display_name", "role"], ""),
            Kind::UserLogin => (&["user_id", "at"], ""),
            Kind::ProductCreated => (PRODUCT, "the product at `version` 1"),
            Kind::ProductUpdated => (
                PRODUCT,
                "a later `version`; `events announce` sends one per product",
            ),
            Kind::ProductDeleted => (&["product_id", "version"], ""),
            Kind::OrderPlaced => (
                &["order_id", "user_id", "items: [{product_id, quantity}]"],
                "",
            ),
            Kind::OrderCancelled => (
                &["order_id", "user_id", "reason?"],
                "`reason: \"expired\"` when the confirmation window ran out",
            ),
            Kind::StockChanged => (&["product_id", "quantity"], "available units"),
            Kind::StockReserved => (&["order_id"], ""),
            Kind::ReservationRejected => (&["order_id", "product_id", "reason"], ""),
        }
    }

    /// The kind whose `type` is `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event with its typed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new account.
    UserRegistered(UserRegistered),
    /// A login.
    UserLogin(UserLogin),
    /// A new product.
    ProductCreated(Product),
    /// A product's new version (or its current one, announced again).
    ProductUpdated(Product),
    /// A deleted product.
    ProductDeleted(ProductDeleted),
    /// A new order.
    OrderPlaced(OrderPlaced),
    /// A cancelled or expired order.
    OrderCancelled(OrderCancelled),
    /// A product's new stock level.
    StockChanged(StockChanged),
    /// An order's stock is held.
    StockReserved(StockReserved),
    /// An order's stock could not be held.
    ReservationRejected(ReservationRejected),
}

/// Why an envelope is not an event this build can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A `type` no producer emits.
    #[error("unknown event type `{0}`")]
    UnknownKind(String),
    /// A version of the payload's shape this build does not know.
    #[error("version {version} of `{kind}` is unknown to this build")]
    UnknownVersion {
        /// The kind.
        kind: Kind,
        /// The envelope's version.
        version: u32,
    },
    /// A payload that is not the kind's shape.
    #[error("the data of `{kind}` does not fit its shape: {source}")]
    Data {
        /// The kind.
        kind: Kind,
        /// What serde says.
        source: serde_json::Error,
    },
}

impl From<DecodeError> for HandleError {
    /// Decoding fails the same way on every attempt: the event is parked.
    fn from(e: DecodeError) -> Self {
        HandleError::Permanent(e.into())
    }
}

fn data<T: Serialize>(payload: &T) -> serde_json::Value {
    serde_json::to_value(payload).expect("event payloads serialize")
}

impl Event {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Event::UserRegistered(_) => Kind::UserRegistered,
            Event::UserLogin(_) => Kind::UserLogin,
            Event::ProductCreated(_) => Kind::ProductCreated,
            Event::ProductUpdated(_) => Kind::ProductUpdated,
            Event::ProductDeleted(_) => Kind::ProductDeleted,
            Event::OrderPlaced(_) => Kind::OrderPlaced,
            Event::OrderCancelled(_) => Kind::OrderCancelled,
            Event::StockChanged(_) => Kind::StockChanged,
            Event::StockReserved(_) => Kind::StockReserved,
            Event::ReservationRejected(_) => Kind::ReservationRejected,
        }
    }

    /// The aggregate it is about: the envelope's `subject` and the Kafka
    /// key, so that one aggregate's events stay in order on one partition.
    pub fn subject(&self) -> Uuid {
        match self {
            Event::UserRegistered(e) => e.user_id,
            Event::UserLogin(e) => e.user_id,
            Event::ProductCreated(e) | Event::ProductUpdated(e) => e.product_id,
            Event::ProductDeleted(e) => e.product_id,
            Event::OrderPlaced(e) => e.order_id,
            Event::OrderCancelled(e) => e.order_id,
            Event::StockChanged(e) => e.product_id,
            Event::StockReserved(e) => e.order_id,
            Event::ReservationRejected(e) => e.order_id,
        }
    }

    /// The payload as JSON (the envelope's `data`).
    fn data(&self) -> serde_json::Value {
        match self {
            Event::UserRegistered(e) => data(e),
            Event::UserLogin(e) => data(e),
            Event::ProductCreated(e) | Event::ProductUpdated(e) => data(e),
            Event::ProductDeleted(e) => data(e),
            Event::OrderPlaced(e) => data(e),
            Event::OrderCancelled(e) => data(e),
            Event::StockChanged(e) => data(e),
            Event::StockReserved(e) => data(e),
            Event::ReservationRejected(e) => data(e),
        }
    }

    /// A new envelope of this event, happening now, from its producer.
    pub fn envelope(&self) -> Envelope {
        let kind = self.kind();
        Envelope::new(
            kind.producer(),
            kind.name(),
            kind.version(),
            self.subject(),
            self.data(),
        )
    }

    /// Put this event in the outbox for its topic, inside the caller's
    /// transaction (see [`teipsum_kit::events::append`]).
    pub fn append(&self, tx: &mut impl GenericClient) -> Result<(), postgres::Error> {
        events::append(tx, self.kind().topic(), &self.envelope())
    }

    /// The event an envelope carries.
    pub fn decode(envelope: &Envelope) -> Result<Event, DecodeError> {
        let kind = Kind::from_name(&envelope.kind)
            .ok_or_else(|| DecodeError::UnknownKind(envelope.kind.clone()))?;
        if envelope.version != kind.version() {
            return Err(DecodeError::UnknownVersion {
                kind,
                version: envelope.version,
            });
        }
        fn payload<T: DeserializeOwned>(kind: Kind, envelope: &Envelope) -> Result<T, DecodeError> {
            T::deserialize(&envelope.data).map_err(|source| DecodeError::Data { kind, source })
        }
        Ok(match kind {
            Kind::UserRegistered => Event::UserRegistered(payload(kind, envelope)?),
            Kind::UserLogin => Event::UserLogin(payload(kind, envelope)?),
            Kind::ProductCreated => Event::ProductCreated(payload(kind, envelope)?),
            Kind::ProductUpdated => Event::ProductUpdated(payload(kind, envelope)?),
            Kind::ProductDeleted => Event::ProductDeleted(payload(kind, envelope)?),
            Kind::OrderPlaced => Event::OrderPlaced(payload(kind, envelope)?),
            Kind::OrderCancelled => Event::OrderCancelled(payload(kind, envelope)?),
            Kind::StockChanged => Event::StockChanged(payload(kind, envelope)?),
            Kind::StockReserved => Event::StockReserved(payload(kind, envelope)?),
            Kind::ReservationRejected => Event::ReservationRejected(payload(kind, envelope)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    /// One event of every kind.
    fn samples() -> Vec<Event> {
        let id = Uuid::now_v7();
        let product = Product {
            product_id: id,
            version: 2,
            name: "Tee".to_owned(),
            description: String::new(),
            sku: "TEE-1".to_owned(),
            price_minor: 1999,
            currency: "EUR".to_owned(),
            category: "t-shirts".to_owned(),
            image_urls: vec!["https://cdn.teipsum.test/tee.jpg".to_owned()],
            active: true,
        };
        vec![
            Event::UserRegistered(UserRegistered {
                user_id: id,
                email: "ana@teipsum.test".to_owned(),
                display_name: "Ana".to_owned(),
                role: "customer".to_owned(),
            }),
            Event::UserLogin(UserLogin {
                user_id: id,
                at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            }),
            Event::ProductCreated(product.clone()),
            Event::ProductUpdated(product),
            Event::ProductDeleted(ProductDeleted {
                product_id: id,
                version: 3,
            }),
            Event::OrderPlaced(OrderPlaced {
                order_id: id,
                user_id: id,
                items: vec![OrderLine {
                    product_id: id,
                    quantity: 2,
                }],
            }),
            Event::OrderCancelled(OrderCancelled {
                order_id: id,
                user_id: id,
                reason: Some("expired".to_owned()),
            }),
            Event::StockChanged(StockChanged {
                product_id: id,
                quantity: 4,
            }),
            Event::StockReserved(StockReserved { order_id: id }),
            Event::ReservationRejected(ReservationRejected {
                order_id: id,
                product_id: id,
                reason: "insufficient stock".to_owned(),
            }),
        ]
    }

    #[test]
    fn every_kind_has_a_sample_that_round_trips_through_the_wire() {
        let samples = samples();
        let kinds: Vec<Kind> = samples.iter().map(Event::kind).collect();
        assert_eq!(kinds, Kind::ALL);
        for event in samples {
            let envelope = event.envelope();
            assert_eq!(envelope.kind, event.kind().name());
            assert_eq!(envelope.source, event.kind().producer());
            assert_eq!(envelope.subject, event.subject().to_string());
            let wire = serde_json::to_vec(&envelope).unwrap();
            let back: Envelope = serde_json::from_slice(&wire).unwrap();
            assert_eq!(Event::decode(&back).unwrap(), event);
        }
    }

    #[test]
    fn the_documented_fields_are_the_payloads() {
        for event in samples() {
            let (fields, _) = event.kind().fields();
            let documented: Vec<&str> = fields
                .iter()
                .map(|f| f.split([':', '?']).next().unwrap())
                .collect();
            let data = event.envelope().data;
            let mut sent: Vec<&str> = data
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = documented.clone();
            sent.sort_unstable();
            expected.sort_unstable();
            assert_eq!(sent, expected, "{}", event.kind());
        }
    }

    #[test]
    fn the_wire_format_is_the_one_deployed() {
        let id: Uuid = "0190a000-0000-7000-8000-000000000001".parse().unwrap();
        let placed = Event::OrderPlaced(OrderPlaced {
            order_id: id,
            user_id: id,
            items: vec![OrderLine {
                product_id: id,
                quantity: 1,
            }],
        })
        .envelope();
        assert_eq!(
            serde_json::to_value(&placed.data).unwrap(),
            serde_json::json!({"order_id": id, "user_id": id, "items": [{"product_id": id, "quantity": 1}]})
        );
        let cancelled = Event::OrderCancelled(OrderCancelled {
            order_id: id,
            user_id: id,
            reason: None,
        })
        .envelope();
        assert_eq!(
            cancelled.data,
            serde_json::json!({"order_id": id, "user_id": id}),
            "a customer's cancel has no reason"
        );
        let login = Event::UserLogin(UserLogin {
            user_id: id,
            at: OffsetDateTime::from_unix_timestamp(0).unwrap(),
        })
        .envelope();
        assert_eq!(login.data["at"], "1970-01-01T00:00:00Z");
        assert_eq!((placed.version, placed.source.as_str()), (1, "order"));
    }

    #[test]
    fn envelopes_that_are_not_events_are_refused_by_name() {
        let mut envelope = samples()[5].envelope();
        envelope.version = 2;
        assert!(matches!(
            Event::decode(&envelope),
            Err(DecodeError::UnknownVersion { version: 2, .. })
        ));
        envelope.version = 1;
        envelope.data = serde_json::json!({"order_id": "x"});
        let error = Event::decode(&envelope).unwrap_err().to_string();
        assert!(error.contains("order-placed"), "{error}");
        envelope.kind = "order-shipped".to_owned();
        assert!(matches!(
            Event::decode(&envelope),
            Err(DecodeError::UnknownKind(_))
        ));
    }
}
