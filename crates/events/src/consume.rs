//! What each consuming service acts on, and the typed handler the kit's
//! consumer runs for it.

use postgres::Transaction;
use teipsum_kit::{
    ConsumerSpec,
    events::{Envelope, HandleError, Handler},
};

use crate::{Event, Kind, service};

/// The kinds of event a service acts on; it subscribes to their topics and
/// acknowledges every other kind on them without touching its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The consuming service.
    pub service: &'static str,
    /// What it acts on.
    pub kinds: &'static [Kind],
}

const PRODUCTS: [Kind; 3] = [
    Kind::ProductCreated,
    Kind::ProductUpdated,
    Kind::ProductDeleted,
];

impl Subscription {
    /// Profiles from accounts and logins.
    pub const USER: Subscription = Subscription {
        service: service::USER,
        kinds: &[Kind::UserRegistered, Kind::UserLogin],
    };
    /// The catalog's read model: products and stock levels.
    pub const CATALOG: Subscription = Subscription {
        service: service::CATALOG,
        kinds: &[PRODUCTS[0], PRODUCTS[1], PRODUCTS[2], Kind::StockChanged],
    };
    /// Orders: their prices from products, their fate from inventory.
    pub const ORDER: Subscription = Subscription {
        service: service::ORDER,
        kinds: &[
            PRODUCTS[0],
            PRODUCTS[1],
            PRODUCTS[2],
            Kind::StockReserved,
            Kind::ReservationRejected,
        ],
    };
    /// Inventory: the orders to reserve for, and which products exist.
    pub const INVENTORY: Subscription = Subscription {
        service: service::INVENTORY,
        kinds: &[
            Kind::OrderPlaced,
            Kind::OrderCancelled,
            PRODUCTS[0],
            PRODUCTS[1],
            PRODUCTS[2],
        ],
    };
    /// Every service that consumes.
    pub const ALL: [Subscription; 4] = [
        Subscription::USER,
        Subscription::CATALOG,
        Subscription::ORDER,
        Subscription::INVENTORY,
    ];

    /// The subscription of `service`, if it consumes.
    pub fn of(service: &str) -> Option<Subscription> {
        Subscription::ALL.into_iter().find(|s| s.service == service)
    }

    /// The topics to subscribe to, sorted.
    pub fn topics(&self) -> Vec<&'static str> {
        let mut topics: Vec<&'static str> = self.kinds.iter().map(|k| k.topic()).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Whether the service acts on events of type `kind` on `topic`.
    pub fn acts_on(&self, topic: &str, kind: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| k.name() == kind && k.topic() == topic)
    }

    /// The services whose events this one reads, sorted.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut sources: Vec<&'static str> = self.kinds.iter().map(|k| k.producer()).collect();
        sources.sort_unstable();
        sources.dedup();
        sources
    }
}

/// What a service does with one decoded event, inside the consumer's
/// transaction; the envelope is there for its `occurred_at` and `id`.
pub type Apply = fn(&mut Transaction<'_>, &Envelope, Event) -> Result<(), HandleError>;

/// The consumer of `subscription`: its topics, and a handler that skips the
/// kinds it does not act on, decodes the others (one that does not decode
/// is parked) and hands them to `apply`.
pub fn consumer(subscription: Subscription, apply: Apply) -> ConsumerSpec {
    consumer_batched(subscription, One(apply))
}

/// A service's reaction to decoded events that keeps what a batch changed
/// across its events and writes it once at the end: every transaction of
/// the consumer is `begin`, `apply` for each event, then `end` (an event
/// applied on its own is a batch of one), or `forget` when it failed.
pub trait Batched: Send + 'static {
    /// Start a transaction of `events` (decoded, those the service acts
    /// on, in order): lock, in one fixed order, every row they may change.
    fn begin(&mut self, tx: &mut Transaction<'_>, events: &[Event]) -> Result<(), HandleError>;
    /// Apply one of them.
    fn apply(
        &mut self,
        tx: &mut Transaction<'_>,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError>;
    /// Write what the events applied since `begin` changed, before the commit.
    fn end(&mut self, tx: &mut Transaction<'_>) -> Result<(), HandleError>;
    /// The transaction failed: forget what was kept since `begin`.
    fn forget(&mut self);
}

/// [`Apply`] as a [`Batched`] that keeps nothing between events.
struct One(Apply);

impl Batched for One {
    fn begin(&mut self, _: &mut Transaction<'_>, _: &[Event]) -> Result<(), HandleError> {
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &mut Transaction<'_>,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        (self.0)(tx, envelope, event)
    }

    fn end(&mut self, _: &mut Transaction<'_>) -> Result<(), HandleError> {
        Ok(())
    }

    fn forget(&mut self) {}
}

/// The consumer of `subscription` (see [`consumer`]) applying its events
/// through `batched`.
pub fn consumer_batched(subscription: Subscription, batched: impl Batched) -> ConsumerSpec {
    ConsumerSpec {
        topics: subscription.topics(),
        handler: Box::new(Typed {
            subscription,
            batched,
            open: false,
        }),
    }
}

struct Typed<B> {
    subscription: Subscription,
    batched: B,
    /// Whether a batch is open (between `begin_batch` and `end_batch`).
    open: bool,
}

impl<B: Batched> Handler for Typed<B> {
    fn handle(
        &mut self,
        tx: &mut Transaction<'_>,
        topic: &str,
        envelope: &Envelope,
    ) -> Result<(), HandleError> {
        if !self.subscription.acts_on(topic, &envelope.kind) {
            return Ok(());
        }
        let event = Event::decode(envelope)?;
        if self.open {
            return self.batched.apply(tx, envelope, event);
        }
        // Alone: a batch of one.
        let events = [event];
        self.batched.begin(tx, &events)?;
        let [event] = events;
        self.batched.apply(tx, envelope, event)?;
        self.batched.end(tx)
    }

    fn wants(&self, topic: &str, kind: &str) -> bool {
        self.subscription.acts_on(topic, kind)
    }

    fn understands(&self, _topic: &str, kind: &str, version: u32) -> bool {
        Kind::from_name(kind).is_some_and(|k| k.version() == version)
    }

    fn begin_batch(
        &mut self,
        tx: &mut Transaction<'_>,
        events: &[(&str, &Envelope)],
    ) -> Result<(), HandleError> {
        // An event that does not decode fails in `handle`, and the batch
        // is applied again one event at a time: nothing to lock for it here.
        let decoded: Vec<Event> = events
            .iter()
            .filter(|(topic, e)| self.subscription.acts_on(topic, &e.kind))
            .filter_map(|(_, e)| Event::decode(e).ok())
            .collect();
        self.open = true;
        self.batched.begin(tx, &decoded)
    }

    fn end_batch(&mut self, tx: &mut Transaction<'_>) -> Result<(), HandleError> {
        self.open = false;
        self.batched.end(tx)
    }

    fn committed(&mut self) {
        self.open = false;
    }

    fn rolled_back(&mut self) {
        self.open = false;
        self.batched.forget();
    }
}
