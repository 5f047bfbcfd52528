//! Events: the envelope, the transactional outbox and its relay, and the
//! idempotent consumer.
//!
//! * A service appends events with [`append`] inside the transaction that
//!   changes its state; both commit or neither does.
//! * The [relay](spawn_relay) publishes committed rows in order through the
//!   idempotent producer and marks them sent. One relay publishes at a time
//!   (a transaction-level advisory lock), so events of one aggregate keep
//!   their order even with several replicas.
//! * A [consumer](spawn_consumer) applies each event inside one transaction
//!   together with a row in `kit_processed_events`, and stores the Kafka
//!   offset only after that commit: a redelivered event is skipped, a crash
//!   between commit and offset costs a redelivery, never a second effect.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use futures::future::join_all;
use postgres::{GenericClient, Transaction, fallible_iterator::FallibleIterator, types::Type};
use rdkafka::{
    Message,
    consumer::{BaseConsumer, Consumer},
    message::BorrowedMessage,
    producer::{FutureProducer, FutureRecord},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Db, DbError, advisory_key};

/// Every event on every topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id; consumers deduplicate on it.
    pub id: Uuid,
    /// `order-placed`, `stock-reserved`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Version of `data`'s shape for this type.
    pub version: u32,
    /// When the change happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The service that emitted it.
    pub source: String,
    /// The aggregate it is about; also the Kafka message key, so that one
    /// aggregate's events stay in one partition, in order.
    pub subject: String,
    /// The payload.
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event of `kind` about `subject`, happening now.
    pub fn new(
        source: &str,
        kind: &str,
        version: u32,
        subject: impl ToString,
        data: serde_json::Value,
    ) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            kind: kind.to_owned(),
            version,
            occurred_at: OffsetDateTime::now_utc(),
            source: source.to_owned(),
            subject: subject.to_string(),
            data,
        }
    }
}

/// Put `event` in the outbox for `topic`, inside the caller's transaction.
pub fn append(
    tx: &mut impl GenericClient,
    topic: &str,
    event: &Envelope,
) -> Result<(), postgres::Error> {
    let payload = serde_json::to_value(event).expect("envelopes serialize");
    // Typed: parse, bind and execute in one round trip (no prepare first).
    tx.execute_typed(
        "INSERT INTO kit_outbox (event_id, topic, key, payload) VALUES ($1, $2, $3, $4)",
        &[
            (&event.id, Type::UUID),
            (&topic, Type::TEXT),
            (&event.subject, Type::TEXT),
            (&payload, Type::JSONB),
        ],
    )?;
    Ok(())
}

/// Stops a background thread and waits for it.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    name: String,
}

impl Worker {
    fn spawn(name: String, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || body(flag))
            .expect("a thread can be spawned");
        Worker {
            stop,
            handle: Some(handle),
            name,
        }
    }

    /// Ask the thread to stop after its current step and wait for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!(worker = %self.name, "worker thread panicked");
        }
    }

    /// Whether the thread has ended on its own (it should not).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

/// Sleep up to `duration`, waking early when `stop` is set.
fn pause(stop: &AtomicBool, duration: Duration) {
    let deadline = Instant::now() + duration;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
}

/// Rows published per relay transaction.
const RELAY_BATCH: i64 = 256;

/// Start the relay of `service`'s outbox.
pub fn spawn_relay(db: Db, producer: FutureProducer, service: &str) -> Worker {
    let lock = advisory_key(&format!("teipsum relay {service}"));
    Worker::spawn(format!("relay-{service}"), move |stop| {
        relay_loop(&db, &producer, lock, &stop)
    })
}

fn relay_loop(db: &Db, producer: &FutureProducer, lock: i64, stop: &AtomicBool) {
    let mut backoff = Duration::from_millis(100);
    let mut listener: Option<postgres::Client> = None;
    let mut last_cleanup = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        match publish_batch(db, producer, lock) {
            Ok(n) if n > 0 => {
                backoff = Duration::from_millis(100);
                tracing::debug!(events = n, "relayed");
            }
            Ok(_) => {
                backoff = Duration::from_millis(100);
                if last_cleanup.elapsed() > Duration::from_secs(600) {
                    last_cleanup = Instant::now();
                    if let Err(e) = forget_sent(db) {
                        tracing::warn!(error = %e, "could not prune the outbox");
                    }
                }
                wait_for_outbox(db, &mut listener, stop);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "relay: publishing failed, backing off");
                listener = None;
                pause(stop, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Wait for a NOTIFY from the outbox trigger, or at most a second.
fn wait_for_outbox(db: &Db, listener: &mut Option<postgres::Client>, stop: &AtomicBool) {
    if listener.is_none() {
        match db.dedicated().and_then(|mut c| {
            c.batch_execute("LISTEN kit_outbox")?;
            Ok(c)
        }) {
            Ok(client) => *listener = Some(client),
            Err(_) => {
                pause(stop, Duration::from_millis(500));
                return;
            }
        }
    }
    let client = listener.as_mut().expect("set above");
    let woke = client
        .notifications()
        .timeout_iter(Duration::from_secs(1))
        .next();
    match woke {
        Ok(_) => {
            // Drain whatever else arrived: one batch covers them all.
            let mut pending = client.notifications();
            while let Ok(Some(_)) = pending.iter().next() {}
        }
        Err(_) => *listener = None,
    }
}

/// The error of one relay step.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] postgres::Error),
    /// The broker did not take an event.
    #[error("event {event_id} to {topic}: {error}")]
    Publish {
        /// The event.
        event_id: Uuid,
        /// Its topic.
        topic: String,
        /// Why.
        error: String,
    },
}

/// Publish one batch of unsent events; returns how many.
pub fn publish_batch(db: &Db, producer: &FutureProducer, lock: i64) -> Result<usize, RelayError> {
    let mut conn = db.get()?;
    let mut tx = conn.transaction()?;
    // One relay at a time: batches of two replicas must not interleave.
    let leader: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&lock])?
        .get(0);
    if !leader {
        return Ok(0);
    }
    let rows = tx.query(
        "SELECT seq, event_id, topic, key, payload::text FROM kit_outbox \
         WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[&RELAY_BATCH],
    )?;
    if rows.is_empty() {
        return Ok(0);
    }
    let events: Vec<(i64, Uuid, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let mut pending = Vec::with_capacity(events.len());
    for (_, event_id, topic, key, payload) in &events {
        match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
            Ok(future) => pending.push(future),
            Err((error, _)) => {
                return Err(RelayError::Publish {
                    event_id: *event_id,
                    topic: topic.clone(),
                    error: error.to_string(),
                });
            }
        }
    }
    // Acknowledgements come from librdkafka's own thread; waiting here keeps
    // the rows locked until every event is on the broker.
    let results = futures::executor::block_on(join_all(pending));
    for (result, (_, event_id, topic, _, _)) in results.into_iter().zip(&events) {
        let error = match result {
            Ok(Ok(_)) => continue,
            Ok(Err((error, _))) => error.to_string(),
            Err(_) => "the producer was dropped".to_owned(),
        };
        return Err(RelayError::Publish {
            event_id: *event_id,
            topic: topic.clone(),
            error,
        });
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
    tx.execute(
        "UPDATE kit_outbox SET sent_at = now() WHERE seq = ANY($1)",
        &[&seqs],
    )?;
    tx.commit()?;
    Ok(events.len())
}

/// Drop sent events older than a week: the broker has them.
fn forget_sent(db: &Db) -> Result<u64, RelayError> {
    let mut conn = db.get()?;
    Ok(conn.execute(
        "DELETE FROM kit_outbox WHERE sent_at < now() - interval '7 days'",
        &[],
    )?)
}

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retrying later may work (the database is away, a serialization
    /// conflict): retried without limit.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying will not help (the event is not what the handler expects):
    /// retried a few times, then parked.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<postgres::Error> for HandleError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        match e.code() {
            None => HandleError::Transient(e.into()),
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW =>
            {
                HandleError::Transient(e.into())
            }
            Some(_) => HandleError::Permanent(e.into()),
        }
    }
}

impl From<DbError> for HandleError {
    fn from(e: DbError) -> Self {
        HandleError::Transient(e.into())
    }
}

impl From<serde_json::Error> for HandleError {
    fn from(e: serde_json::Error) -> Self {
        HandleError::Permanent(e.into())
    }
}

/// A service's reaction to events.
pub trait Handler: Send + 'static {
    /// Apply `event` from `topic` inside `tx`. Events the service does not
    /// care about are ignored by returning `Ok`.
    fn handle(
        &mut self,
        tx: &mut Transaction<'_>,
        topic: &str,
        event: &Envelope,
    ) -> Result<(), HandleError>;

    /// Whether events of `kind` on `topic` may change anything. Those that
    /// cannot are acknowledged without a transaction or a ledger row: on a
    /// topic shared by several consumers, most events are for the others.
    fn wants(&self, _topic: &str, _kind: &str) -> bool {
        true
    }
}

/// `handler`, told that only events of `kinds` matter to it.
pub fn only<H: Handler>(kinds: &'static [&'static str], handler: H) -> Only<H> {
    Only { kinds, handler }
}

/// A handler that skips every kind of event but a few (see [`only`]).
pub struct Only<H> {
    kinds: &'static [&'static str],
    handler: H,
}

impl<H: Handler> Handler for Only<H> {
    fn handle(
        &mut self,
        tx: &mut Transaction<'_>,
        topic: &str,
        event: &Envelope,
    ) -> Result<(), HandleError> {
        self.handler.handle(tx, topic, event)
    }

    fn wants(&self, topic: &str, kind: &str) -> bool {
        self.kinds.contains(&kind) && self.handler.wants(topic, kind)
    }
}

impl<F> Handler for F
where
    F: FnMut(&mut Transaction<'_>, &str, &Envelope) -> Result<(), HandleError> + Send + 'static,
{
    fn handle(
        &mut self,
        tx: &mut Transaction<'_>,
        topic: &str,
        event: &Envelope,
    ) -> Result<(), HandleError> {
        self(tx, topic, event)
    }
}

/// Attempts before an event that fails permanently is parked.
const PERMANENT_ATTEMPTS: u32 = 3;

/// Start consuming `topics` as `consumer_name` (the ledger's `consumer`).
pub fn spawn_consumer(
    db: Db,
    consumer: BaseConsumer<crate::kafka::RebalanceLogger>,
    consumer_name: &str,
    topics: &[&str],
    handler: impl Handler,
) -> Result<Worker, rdkafka::error::KafkaError> {
    consumer.subscribe(topics)?;
    let name = consumer_name.to_owned();
    Ok(Worker::spawn(
        format!("consumer-{consumer_name}"),
        move |stop| {
            let mut handler = handler;
            while !stop.load(Ordering::SeqCst) {
                match consumer.poll(Duration::from_millis(200)) {
                    None => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer: broker error");
                        pause(&stop, Duration::from_millis(500));
                    }
                    Some(Ok(message)) => {
                        if process(&db, &name, &message, &mut handler, &stop)
                            && let Err(e) = consumer.store_offset_from_message(&message)
                        {
                            tracing::warn!(error = %e, "could not store the offset");
                        }
                    }
                }
            }
            // Commit what was stored before leaving the group.
            let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
        },
    ))
}

/// Apply one message; returns whether its offset may be stored.
fn process(
    db: &Db,
    consumer: &str,
    message: &BorrowedMessage<'_>,
    handler: &mut impl Handler,
    stop: &AtomicBool,
) -> bool {
    tracing::trace!(
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        "message"
    );
    let topic = message.topic();
    let envelope = match message.payload().map(serde_json::from_slice::<Envelope>) {
        Some(Ok(envelope)) => envelope,
        Some(Err(e)) => {
            return park(
                db,
                consumer,
                message,
                &format!("not an event envelope: {e}"),
                stop,
            );
        }
        None => return park(db, consumer, message, "empty message", stop),
    };
    let span = tracing::info_span!("event", consumer, topic, event_id = %envelope.id, kind = %envelope.kind);
    let _entered = span.enter();
    if !handler.wants(topic, &envelope.kind) {
        tracing::trace!("not for this consumer; skipped");
        return true;
    }
    let mut failures = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        match apply(db, consumer, topic, &envelope, handler) {
            Ok(true) => {
                tracing::debug!("applied");
                return true;
            }
            Ok(false) => {
                tracing::debug!("already applied; skipped");
                return true;
            }
            Err(HandleError::Transient(e)) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff, "transient failure");
            }
            Err(HandleError::Permanent(e)) => {
                failures += 1;
                tracing::warn!(error = %format!("{e:#}"), attempt = failures, "handler failed");
                if failures >= PERMANENT_ATTEMPTS {
                    return park(db, consumer, message, &format!("{e:#}"), stop);
                }
            }
        }
        pause(stop, backoff);
        if stop.load(Ordering::SeqCst) {
            // Not applied and not parked: it will be redelivered.
            return false;
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The ledger row and the effect, in one transaction.
fn apply(
    db: &Db,
    consumer: &str,
    topic: &str,
    envelope: &Envelope,
    handler: &mut impl Handler,
) -> Result<bool, HandleError> {
    let mut conn = db.get()?;
    let mut tx = conn.transaction()?;
    let fresh = tx.execute_typed(
        "INSERT INTO kit_processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[(&consumer, Type::TEXT), (&envelope.id, Type::UUID)],
    )?;
    if fresh == 0 {
        return Ok(false);
    }
    handler.handle(&mut tx, topic, envelope)?;
    tx.commit()?;
    Ok(true)
}

/// Keep a message that cannot be applied, and move on.
fn park(
    db: &Db,
    consumer: &str,
    message: &BorrowedMessage<'_>,
    error: &str,
    stop: &AtomicBool,
) -> bool {
    tracing::error!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %error, "parking a message that cannot be applied");
    let key = message
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    let payload = message.payload().map(<[u8]>::to_vec);
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = db.get().map_err(RelayError::from).and_then(|mut conn| {
            conn.execute(
                "INSERT INTO kit_parked_events (consumer, topic, partition, \"offset\", key, payload, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&consumer, &message.topic(), &message.partition(), &message.offset(), &key, &payload, &error],
            )
            .map_err(RelayError::from)
        });
        match result {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "could not park the message; retrying");
                pause(stop, backoff);
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wants_its_kinds_and_what_the_inner_handler_wants() {
        struct Picky;
        impl Handler for Picky {
            fn handle(
                &mut self,
                _: &mut Transaction<'_>,
                _: &str,
                _: &Envelope,
            ) -> Result<(), HandleError> {
                Ok(())
            }
            fn wants(&self, topic: &str, _: &str) -> bool {
                topic == "order-events"
            }
        }
        let all = |_: &mut Transaction<'_>, _: &str, _: &Envelope| Ok(());
        assert!(all.wants("any", "anything"), "a closure wants every event");
        let handler = only(&["stock-reserved", "reservation-rejected"], all);
        assert!(handler.wants("inventory-events", "stock-reserved"));
        assert!(handler.wants("inventory-events", "reservation-rejected"));
        assert!(!handler.wants("inventory-events", "stock-changed"));
        let both = only(&["order-placed"], Picky);
        assert!(both.wants("order-events", "order-placed"));
        assert!(!both.wants("other-events", "order-placed"));
        assert!(!both.wants("order-events", "order-cancelled"));
    }

    #[test]
    fn the_envelope_has_the_documented_shape() {
        let event = Envelope::new(
            "order",
            "order-placed",
            1,
            "o-1",
            serde_json::json!({"a": 1}),
        );
        let json = serde_json::to_value(&event).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "data",
                "id",
                "occurred_at",
                "source",
                "subject",
                "type",
                "version"
            ]
        );
        assert_eq!(json["type"], "order-placed");
        assert!(json["occurred_at"].as_str().unwrap().ends_with('Z'));
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
