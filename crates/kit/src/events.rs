//! Events: the envelope, the transactional outbox and its relay, and the
//! idempotent consumer.
//!
//! * A service appends events with [`append`] inside the transaction that
//!   changes its state; both commit or neither does.
//! * The [relay](spawn_relay) publishes committed rows in order through the
//!   idempotent producer and marks them sent. One relay publishes at a time
//!   (a transaction-level advisory lock), so events of one aggregate keep
//!   their order even with several replicas.
//! * A [consumer](spawn_consumer) applies each batch of events (what one
//!   poll brings, up to a bound the spec sets) inside one transaction
//!   together with a row in `kit_processed_events` per event, and stores the
//!   Kafka offsets only after that commit: a redelivered event is skipped, a
//!   crash between commit and offset costs a redelivery, never a second
//!   effect. A batch that fails is applied again one event at a time.
//!   Before that it checks the event's `source` against the topic's
//!   [`Producers`] and its version against the handler
//!   ([`Handler::understands`]). A failure the database may get over is
//!   retried for as long as it lasts ([`sqlstate_is_transient`]); an event
//!   that can never be applied is parked, and [`replay`] applies it later.

use std::{
    collections::{BTreeMap, BTreeSet},
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

use crate::{
    db::{Db, DbError, advisory_key},
    metrics::{ConsumerMetrics, Outcome, RelayMetrics},
};

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

/// Old rows a service removes now and then: consumed-event ids (always)
/// and tables the service names, such as idempotency keys.
#[derive(Debug, Clone)]
pub struct Retention {
    /// How long rows are kept.
    pub keep: Duration,
    /// `(table, timestamp column)` pairs besides the consumer ledger.
    pub tables: Vec<(&'static str, &'static str)>,
}

impl Retention {
    /// Keep rows for `keep`; only the ledger until [`Retention::table`] adds more.
    pub fn new(keep: Duration) -> Self {
        Retention {
            keep,
            tables: Vec::new(),
        }
    }

    /// Also prune `table` on its timestamp `column`.
    pub fn table(mut self, table: &'static str, column: &'static str) -> Self {
        self.tables.push((table, column));
        self
    }
}

/// Remove the rows `retention` covers that are older than it; returns how many.
pub fn prune(db: &Db, retention: &Retention) -> Result<u64, DbError> {
    let mut conn = db.get()?;
    let secs = retention.keep.as_secs_f64();
    let mut removed = 0;
    let tables = std::iter::once(("kit_processed_events", "processed_at"))
        .chain(retention.tables.iter().copied());
    for (table, column) in tables {
        // Identifiers come from the service's code, never from input.
        removed += conn.execute(
            &format!("DELETE FROM {table} WHERE {column} < now() - make_interval(secs => $1)"),
            &[&secs],
        )?;
    }
    Ok(removed)
}

/// Start the relay of `service`'s outbox, counting what it publishes in
/// `metrics`; when idle, it also prunes sent outbox rows and what
/// `retention` covers, every ten minutes.
pub fn spawn_relay(
    db: Db,
    producer: FutureProducer,
    service: &str,
    retention: Retention,
    metrics: RelayMetrics,
) -> Worker {
    let lock = advisory_key(&format!("teipsum relay {service}"));
    Worker::spawn(format!("relay-{service}"), move |stop| {
        relay_loop(&db, &producer, lock, &retention, &metrics, &stop)
    })
}

fn relay_loop(
    db: &Db,
    producer: &FutureProducer,
    lock: i64,
    retention: &Retention,
    metrics: &RelayMetrics,
    stop: &AtomicBool,
) {
    let mut backoff = Duration::from_millis(100);
    let mut listener: Option<postgres::Client> = None;
    let mut last_cleanup: Option<Instant> = None;
    let mut failing_since: Option<Instant> = None;
    let mut log = Throttle::new();
    while !stop.load(Ordering::SeqCst) {
        match publish_batch(db, producer, lock, metrics) {
            Ok(n) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(failing_for = ?since.elapsed(), "relay: publishing again");
                    log = Throttle::new();
                }
                backoff = Duration::from_millis(100);
                if n > 0 {
                    tracing::debug!(events = n, "relayed");
                    continue;
                }
                if last_cleanup.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                    last_cleanup = Some(Instant::now());
                    if let Err(e) = forget_sent(db) {
                        tracing::warn!(error = %crate::db::describe(&e), "could not prune the outbox");
                    }
                    match prune(db, retention) {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(rows = n, keep = ?retention.keep, "pruned old ledger rows")
                        }
                        Err(e) => {
                            tracing::warn!(error = %crate::db::describe(&e), "could not prune old rows")
                        }
                    }
                }
                wait_for_outbox(db, &mut listener, stop);
            }
            Err(e) => {
                failing_since.get_or_insert_with(Instant::now);
                if log.due() {
                    tracing::warn!(error = %crate::db::describe(&e), retry_in = ?backoff, "relay: publishing failed, backing off");
                }
                listener = None;
                pause(stop, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// How long the oldest unsent event has waited in the outbox, if there is one.
pub fn outbox_lag(conn: &mut impl GenericClient) -> Result<Option<Duration>, postgres::Error> {
    let row = conn.query_opt(
        "SELECT greatest(extract(epoch FROM now() - created_at), 0)::float8 FROM kit_outbox \
         WHERE sent_at IS NULL ORDER BY seq LIMIT 1",
        &[],
    )?;
    Ok(row.map(|r| Duration::from_secs_f64(r.get(0))))
}

/// What waits in a service's database: the outbox's backlog and the parked
/// events (what `/metrics` reports of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Events not published yet.
    pub waiting: i64,
    /// How long the oldest of them has waited, if one does.
    pub oldest: Option<Duration>,
    /// Parked events.
    pub parked: i64,
}

/// The [`Backlog`], in one statement: the unsent rows through the outbox's
/// partial index, the parked ones by a count of their (small) table.
pub fn backlog(conn: &mut impl GenericClient) -> Result<Backlog, postgres::Error> {
    let row = conn.query_one(
        "SELECT (SELECT count(*) FROM kit_outbox WHERE sent_at IS NULL), \
                (SELECT greatest(extract(epoch FROM now() - created_at), 0)::float8 FROM kit_outbox \
                  WHERE sent_at IS NULL ORDER BY seq LIMIT 1), \
                (SELECT count(*) FROM kit_parked_events)",
        &[],
    )?;
    Ok(Backlog {
        waiting: row.get(0),
        oldest: row.get::<_, Option<f64>>(1).map(Duration::from_secs_f64),
        parked: row.get(2),
    })
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

/// Publish one batch of unsent events, counting them in `metrics` once the
/// broker has them all and they are marked sent; returns how many.
pub fn publish_batch(
    db: &Db,
    producer: &FutureProducer,
    lock: i64,
    metrics: &RelayMetrics,
) -> Result<usize, RelayError> {
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
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, topic, _, _) in &events {
        *per_topic.entry(topic).or_default() += 1;
    }
    for (topic, n) in per_topic {
        metrics.published(topic, n);
    }
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
    /// Retrying later may work (the database is away, full, read-only,
    /// timing out, a serialization conflict, a missing grant): retried with
    /// backoff for as long as it lasts, keeping the partition's order.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying will not help (the event is not what the handler expects):
    /// retried a few times, then parked for `events replay`.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// Whether a statement that failed with `code` may succeed later with the
/// same event. Only failures caused by the event's own values are final:
/// class 22 (data exception: a value that does not fit a column), 23
/// (integrity constraint: this event breaks a rule of the schema) and P0
/// (raised by PL/pgSQL). They fail the same way each time, and blocking the
/// consumer behind one event would stop the saga of every other order, so
/// they are parked. Everything else (08 connection, 25006 read-only after a
/// failover, 40 rollback, 42 a missing migration or grant, 53 disk or memory,
/// 55P03 lock timeout, 57 timeouts and shutdowns, 58 I/O, XX000 internal,
/// and classes not listed) hits every event alike and goes away when the
/// database or the deployment is repaired: parking them would park every
/// event in the meantime.
pub fn sqlstate_is_transient(code: &postgres::error::SqlState) -> bool {
    !matches!(code.code().get(..2), Some("22" | "23" | "P0"))
}

impl From<postgres::Error> for HandleError {
    fn from(e: postgres::Error) -> Self {
        // No SQLSTATE: the connection broke or could not be had.
        let permanent = e.code().is_some_and(|code| !sqlstate_is_transient(code));
        let error = anyhow::anyhow!(crate::db::describe(&e));
        if permanent {
            HandleError::Permanent(error)
        } else {
            HandleError::Transient(error)
        }
    }
}

impl From<DbError> for HandleError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Query(e) => e.into(),
            other => HandleError::Transient(anyhow::anyhow!(crate::db::describe(&other))),
        }
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

    /// Whether this build knows version `version` of `kind`'s data. Every
    /// event type is at version 1 today; a handler that learns version 2
    /// says so here. An event it wants but does not understand is not
    /// parked: the consumer waits (its partition stops there) until a build
    /// that understands it is deployed, since a producer is upgraded first.
    fn understands(&self, _topic: &str, _kind: &str, version: u32) -> bool {
        version == 1
    }

    /// Called once per batch, inside its transaction, before the first of
    /// `events` (the fresh ones, in order) is handled: the place to lock
    /// every row the batch will change in one fixed order, so that two
    /// batches in two transactions cannot deadlock. Events applied one at a
    /// time do not come through here.
    fn begin_batch(
        &mut self,
        _tx: &mut Transaction<'_>,
        _events: &[(&str, &Envelope)],
    ) -> Result<(), HandleError> {
        Ok(())
    }

    /// Called once per batch, inside its transaction, after the last of its
    /// events was handled and before the commit: the place to write what
    /// the batch's events changed together (a level several of them moved,
    /// written once). Like [`Handler::begin_batch`], not called for events
    /// applied one at a time.
    fn end_batch(&mut self, _tx: &mut Transaction<'_>) -> Result<(), HandleError> {
        Ok(())
    }

    /// Called after each transaction of the consumer commits (a batch or a
    /// single event): what was handled since the last call is now what
    /// every reader of the database sees. An in-process view of the tables
    /// refreshes itself here. Not called for a transaction that failed.
    fn committed(&mut self) {}

    /// Called after a transaction of the consumer failed (it rolled back):
    /// what was handled since the last commit never happened. A handler
    /// that keeps something for [`Handler::committed`] forgets it here.
    fn rolled_back(&mut self) {}
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

    fn understands(&self, topic: &str, kind: &str, version: u32) -> bool {
        self.handler.understands(topic, kind, version)
    }

    fn begin_batch(
        &mut self,
        tx: &mut Transaction<'_>,
        events: &[(&str, &Envelope)],
    ) -> Result<(), HandleError> {
        self.handler.begin_batch(tx, events)
    }

    fn end_batch(&mut self, tx: &mut Transaction<'_>) -> Result<(), HandleError> {
        self.handler.end_batch(tx)
    }

    fn committed(&mut self) {
        self.handler.committed()
    }

    fn rolled_back(&mut self) {
        self.handler.rolled_back()
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

/// The producers the spec declares for each topic a consumer reads
/// ([`teipsum_conventions::env::TOPIC_PRODUCERS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Producers(BTreeMap<String, BTreeSet<String>>);

impl Producers {
    /// From `topic → producers`.
    pub fn new(map: BTreeMap<String, BTreeSet<String>>) -> Self {
        Producers(map)
    }

    /// From `(topic, [producer])` pairs (tests, mostly).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [&'a str])>) -> Self {
        Producers(
            pairs
                .into_iter()
                .map(|(topic, producers)| {
                    (
                        topic.to_owned(),
                        producers.iter().map(|p| (*p).to_owned()).collect(),
                    )
                })
                .collect(),
        )
    }

    /// Topics of `topics` with no declared producer.
    pub fn missing<'a>(&self, topics: &[&'a str]) -> Vec<&'a str> {
        topics
            .iter()
            .copied()
            .filter(|t| self.0.get(*t).is_none_or(BTreeSet::is_empty))
            .collect()
    }

    /// Why `event` on `topic` is not to be trusted, if it is not.
    fn mistrust(&self, topic: &str, event: &Envelope) -> Option<String> {
        let expected = self.0.get(topic);
        if expected.is_some_and(|p| p.contains(&event.source)) {
            return None;
        }
        let expected = expected
            .map(|p| p.iter().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "none declared".to_owned());
        Some(format!(
            "event from `{}` on topic `{topic}`, whose producer is {expected}",
            event.source
        ))
    }
}

/// Attempts before an event that fails permanently is parked.
const PERMANENT_ATTEMPTS: u32 = 3;

/// Longest wait between two attempts at an event that fails transiently.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// At most one log line per this much time about one event that keeps failing.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Most events one consumer transaction applies when the service's
/// environment does not say ([`teipsum_conventions::env::CONSUMER_BATCH`]):
/// one, the spec's default too, until batches are measured to help.
pub const DEFAULT_BATCH: usize = 1;

/// Start consuming `topics` as `consumer_name` (the ledger's `consumer`),
/// trusting on each topic only the events of its declared `producers`, and
/// applying up to `batch` events per transaction.
///
/// Each poll takes what the broker has already delivered, up to `batch`
/// messages. Their events are applied in one transaction with one ledger row
/// each, and their offsets are stored once, after the commit. When that
/// transaction fails, the same messages are applied again one at a time,
/// each with its own retries and parking, so that one poison event costs
/// the batch a second pass but never blocks or poisons the others.
///
/// What becomes of each event, and how long its handler takes, is counted
/// in the consumer's [`ConsumerMetrics`] (see [`crate::kafka::observed_consumer`]).
pub fn spawn_consumer(
    db: Db,
    consumer: BaseConsumer<crate::kafka::ConsumerWatch>,
    consumer_name: &str,
    topics: &[&str],
    producers: Producers,
    handler: impl Handler,
    batch: usize,
) -> Result<Worker, rdkafka::error::KafkaError> {
    consumer.subscribe(topics)?;
    let name = consumer_name.to_owned();
    let batch = batch.max(1);
    let metrics = consumer.context().metrics().clone();
    Ok(Worker::spawn(
        format!("consumer-{consumer_name}"),
        move |stop| {
            let mut handler = handler;
            while !stop.load(Ordering::SeqCst) {
                let first = match consumer.poll(Duration::from_millis(200)) {
                    None => continue,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer: broker error");
                        pause(&stop, Duration::from_millis(500));
                        continue;
                    }
                    Some(Ok(message)) => message,
                };
                let mut messages = vec![first];
                // Only what librdkafka has already fetched: no waiting here.
                while messages.len() < batch {
                    match consumer.poll(Duration::ZERO) {
                        Some(Ok(message)) => messages.push(message),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "consumer: broker error");
                            break;
                        }
                        None => break,
                    }
                }
                metrics.busy();
                let done = process_batch(
                    &db,
                    &name,
                    &producers,
                    &messages,
                    &mut handler,
                    &metrics,
                    &stop,
                );
                metrics.idle();
                if let Err(e) = store_offsets(&consumer, &messages[..done]) {
                    tracing::warn!(error = %e, "could not store the offsets");
                }
            }
            // Commit what was stored before leaving the group.
            let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
        },
    ))
}

/// Store, for each partition, the offset after the last of `messages`
/// (which are in delivery order): one call for the whole batch.
fn store_offsets(
    consumer: &BaseConsumer<crate::kafka::ConsumerWatch>,
    messages: &[BorrowedMessage<'_>],
) -> Result<(), rdkafka::error::KafkaError> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in messages {
        let offset = next.entry((m.topic(), m.partition())).or_insert(0);
        *offset = (*offset).max(m.offset() + 1);
    }
    let mut list = rdkafka::TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        list.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    }
    consumer.store_offsets(&list)
}

/// Says when a repeated failure is worth another log line.
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn new() -> Self {
        Throttle { last: None }
    }

    fn due(&mut self) -> bool {
        let due = self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }
}

/// What to do with one message, decided before any transaction.
enum Step {
    /// Apply this event.
    Apply(Envelope),
    /// Nothing to do: not for this consumer.
    Skip,
    /// It can never be applied: park it with this reason.
    Park(String),
    /// A version this build does not know: wait for an upgraded consumer.
    Wait(Envelope),
}

/// Decide what becomes of `message`.
fn classify(producers: &Producers, message: &BorrowedMessage<'_>, handler: &impl Handler) -> Step {
    tracing::trace!(
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        "message"
    );
    let topic = message.topic();
    let envelope = match message.payload().map(serde_json::from_slice::<Envelope>) {
        Some(Ok(envelope)) => envelope,
        Some(Err(e)) => return Step::Park(format!("not an event envelope: {e}")),
        None => return Step::Park("empty message".to_owned()),
    };
    if let Some(why) = producers.mistrust(topic, &envelope) {
        tracing::error!(
            topic,
            event_id = %envelope.id,
            source = %envelope.source,
            expected = ?producers.0.get(topic),
            "an event from a service that does not produce this topic"
        );
        return Step::Park(why);
    }
    if !handler.wants(topic, &envelope.kind) {
        tracing::trace!(event_id = %envelope.id, "not for this consumer; skipped");
        return Step::Skip;
    }
    if !handler.understands(topic, &envelope.kind, envelope.version) {
        return Step::Wait(envelope);
    }
    Step::Apply(envelope)
}

/// Apply `messages` (one poll's worth, in delivery order); returns how many
/// of them, from the first, are done (applied, skipped or parked), so that
/// their offsets may be stored.
fn process_batch(
    db: &Db,
    consumer: &str,
    producers: &Producers,
    messages: &[BorrowedMessage<'_>],
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
    stop: &AtomicBool,
) -> usize {
    let mut steps: Vec<Step> = Vec::with_capacity(messages.len());
    for message in messages {
        let step = classify(producers, message, handler);
        let wait = matches!(step, Step::Wait(_));
        steps.push(step);
        // The partition stops at an event this build cannot read; what
        // came before it is still applied.
        if wait {
            break;
        }
    }
    let batch: Vec<(&str, &Envelope)> = messages
        .iter()
        .zip(&steps)
        .filter_map(|(m, step)| match step {
            Step::Apply(envelope) => Some((m.topic(), envelope)),
            _ => None,
        })
        .collect();
    let mut applied_together = batch.len() < 2;
    if !applied_together {
        let span = tracing::info_span!("batch", consumer, events = batch.len());
        let _entered = span.enter();
        match apply_batch(db, consumer, &batch, handler, metrics) {
            Ok(fresh) => {
                tracing::debug!(events = batch.len(), fresh, "batch applied");
                applied_together = true;
            }
            Err(e) => {
                tracing::info!(error = %e, events = batch.len(), "the batch failed; applying its events one at a time");
            }
        }
    }
    let batched = applied_together && batch.len() > 1;
    for (done, (message, step)) in messages.iter().zip(&steps).enumerate() {
        let ok = match step {
            Step::Skip => {
                metrics.consumed(message.topic(), Outcome::Skipped);
                true
            }
            Step::Apply(_) if batched => true,
            Step::Apply(envelope) => {
                apply_one(db, consumer, message, envelope, handler, metrics, stop)
            }
            Step::Park(why) => {
                let parked = park(db, consumer, message, why, stop);
                if parked {
                    metrics.consumed(message.topic(), Outcome::Parked);
                }
                parked
            }
            Step::Wait(envelope) => {
                wait_for_upgrade(envelope, stop);
                false
            }
        };
        if !ok {
            return done;
        }
    }
    messages.len()
}

/// Hold the partition at an event whose version this build does not know:
/// nothing changes until a newer build runs, so wait for the restart.
fn wait_for_upgrade(envelope: &Envelope, stop: &AtomicBool) {
    let mut log = Throttle::new();
    while !stop.load(Ordering::SeqCst) {
        if log.due() {
            tracing::warn!(
                event_id = %envelope.id,
                kind = %envelope.kind,
                version = envelope.version,
                "an event version this build does not know; waiting for an upgraded consumer"
            );
        }
        pause(stop, MAX_BACKOFF);
    }
}

/// Every event of `batch` with its ledger row, in one transaction; returns
/// how many were fresh (the others had been applied before).
fn apply_batch(
    db: &Db,
    consumer: &str,
    batch: &[(&str, &Envelope)],
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
) -> Result<usize, HandleError> {
    let applied = apply_batch_in(db, consumer, batch, handler, metrics);
    match &applied {
        Ok(todo) => {
            handler.committed();
            // An id twice in one batch was applied once, the first time.
            let mut fresh = todo.clone();
            for (topic, envelope) in batch {
                let outcome = if fresh.remove(&envelope.id) {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                };
                metrics.consumed(topic, outcome);
            }
        }
        Err(_) => handler.rolled_back(),
    }
    applied.map(|todo| todo.len())
}

/// [`apply_batch`]'s transaction; returns the ids of the fresh events.
fn apply_batch_in(
    db: &Db,
    consumer: &str,
    batch: &[(&str, &Envelope)],
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
) -> Result<BTreeSet<Uuid>, HandleError> {
    let mut conn = db.get()?;
    let mut tx = conn.transaction()?;
    let ids: Vec<Uuid> = batch.iter().map(|(_, e)| e.id).collect();
    // One ledger row per event, all in one statement; an id seen before
    // (or twice in this batch) comes back once at most.
    let inserted = tx.query_typed(
        "INSERT INTO kit_processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[]) \
         ON CONFLICT DO NOTHING RETURNING event_id",
        &[(&consumer, Type::TEXT), (&ids, Type::UUID_ARRAY)],
    )?;
    let mut fresh: BTreeSet<Uuid> = inserted.iter().map(|r| r.get(0)).collect();
    let todo: Vec<(&str, &Envelope)> = batch
        .iter()
        .copied()
        .filter(|(_, e)| fresh.remove(&e.id))
        .collect();
    handler.begin_batch(&mut tx, &todo)?;
    for (topic, envelope) in &todo {
        let started = Instant::now();
        let handled = handler.handle(&mut tx, topic, envelope);
        metrics.handled(topic, started.elapsed());
        handled?;
    }
    handler.end_batch(&mut tx)?;
    tx.commit()?;
    Ok(todo.iter().map(|(_, e)| e.id).collect())
}

/// Apply one event on its own, retrying a transient failure for as long as
/// it lasts and parking an event that keeps failing permanently; returns
/// whether its offset may be stored.
fn apply_one(
    db: &Db,
    consumer: &str,
    message: &BorrowedMessage<'_>,
    envelope: &Envelope,
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
    stop: &AtomicBool,
) -> bool {
    let topic = message.topic();
    let span = tracing::info_span!("event", consumer, topic, event_id = %envelope.id, kind = %envelope.kind);
    let _entered = span.enter();
    let mut log = Throttle::new();
    let mut failures = 0;
    let mut attempts = 0u64;
    let first_failure = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        attempts += 1;
        match apply(db, consumer, topic, envelope, handler, metrics) {
            Ok(fresh) => {
                let outcome = if fresh {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                };
                metrics.consumed(topic, outcome);
                if attempts > 1 {
                    tracing::info!(
                        attempts,
                        failing_for = ?first_failure.elapsed(),
                        "applied after failing"
                    );
                }
                tracing::debug!(fresh, "applied");
                return true;
            }
            Err(HandleError::Transient(e)) => {
                if log.due() {
                    tracing::warn!(
                        error = %format!("{e:#}"),
                        attempts,
                        failing_for = ?first_failure.elapsed(),
                        retry_in = ?backoff,
                        "transient failure; retrying until it clears"
                    );
                }
            }
            Err(HandleError::Permanent(e)) => {
                failures += 1;
                tracing::warn!(error = %format!("{e:#}"), attempt = failures, "handler failed");
                if failures >= PERMANENT_ATTEMPTS {
                    let parked = park(db, consumer, message, &format!("{e:#}"), stop);
                    if parked {
                        metrics.consumed(topic, Outcome::Parked);
                    }
                    return parked;
                }
            }
        }
        pause(stop, backoff);
        if stop.load(Ordering::SeqCst) {
            // Not applied and not parked: it will be redelivered.
            return false;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The ledger row and the effect, in one transaction; `Ok(false)` when the
/// event had been applied before.
fn apply(
    db: &Db,
    consumer: &str,
    topic: &str,
    envelope: &Envelope,
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
) -> Result<bool, HandleError> {
    let applied = (|| {
        let mut conn = db.get()?;
        let mut tx = conn.transaction()?;
        let fresh = apply_in(&mut tx, consumer, topic, envelope, handler, metrics)?;
        tx.commit()?;
        Ok(fresh)
    })();
    match applied {
        Ok(true) => handler.committed(),
        Ok(false) => {}
        Err(_) => handler.rolled_back(),
    }
    applied
}

fn apply_in(
    tx: &mut Transaction<'_>,
    consumer: &str,
    topic: &str,
    envelope: &Envelope,
    handler: &mut impl Handler,
    metrics: &ConsumerMetrics,
) -> Result<bool, HandleError> {
    let fresh = tx.execute_typed(
        "INSERT INTO kit_processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[(&consumer, Type::TEXT), (&envelope.id, Type::UUID)],
    )?;
    if fresh == 0 {
        return Ok(false);
    }
    let started = Instant::now();
    let handled = handler.handle(tx, topic, envelope);
    metrics.handled(topic, started.elapsed());
    handled?;
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
    let mut log = Throttle::new();
    loop {
        let result = db.get().map_err(RelayError::from).and_then(|mut conn| {
            conn.execute(
                "INSERT INTO kit_parked_events (consumer, topic, partition, \"offset\", key, payload, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&consumer, &message.topic(), &message.partition(), &message.offset(), &key, &payload, &error],
            )?;
            Ok(parked_count(&mut *conn)?)
        });
        match result {
            Ok(parked) => {
                tracing::warn!(
                    parked_events = parked,
                    "parked; `events parked` lists them, `events replay` re-applies them"
                );
                return true;
            }
            Err(e) => {
                if log.due() {
                    tracing::warn!(error = %crate::db::describe(&e), "could not park the message; retrying");
                }
                pause(stop, backoff);
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// How many messages are parked in this database.
pub fn parked_count(conn: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    Ok(conn
        .query_one("SELECT count(*) FROM kit_parked_events", &[])?
        .get(0))
}

/// A parked message, as `events parked` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parked {
    /// Row id (what `events replay --id` takes, as does the event id).
    pub id: i64,
    /// The event id, when the message is an envelope.
    pub event_id: Option<Uuid>,
    /// The event type, when the message is an envelope.
    pub kind: Option<String>,
    /// The event's `source`, when the message is an envelope.
    pub source: Option<String>,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Why it was parked (or why its last replay failed).
    pub error: String,
    /// When (RFC 3339).
    pub parked_at: String,
}

/// The messages `consumer` parked, oldest first.
pub fn list_parked(
    conn: &mut impl GenericClient,
    consumer: &str,
) -> Result<Vec<Parked>, postgres::Error> {
    let rows = conn.query(
        "SELECT id, topic, partition, \"offset\", payload, error, \
                to_char(parked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM kit_parked_events WHERE consumer = $1 ORDER BY id",
        &[&consumer],
    )?;
    Ok(rows
        .iter()
        .map(|row| {
            let payload: Option<Vec<u8>> = row.get(4);
            let envelope = payload
                .as_deref()
                .and_then(|p| serde_json::from_slice::<Envelope>(p).ok());
            Parked {
                id: row.get(0),
                event_id: envelope.as_ref().map(|e| e.id),
                kind: envelope.as_ref().map(|e| e.kind.clone()),
                source: envelope.as_ref().map(|e| e.source.clone()),
                topic: row.get(1),
                partition: row.get(2),
                offset: row.get(3),
                error: row.get(5),
                parked_at: row.get(6),
            }
        })
        .collect())
}

/// Which parked messages to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Every one of the consumer's.
    All,
    /// The row with this id.
    Row(i64),
    /// The message carrying this event id.
    Event(Uuid),
}

/// What became of one replayed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Applied, and removed from the parked table.
    Applied,
    /// Its event had been applied before (or is not for this consumer):
    /// removed without a second effect.
    Skipped,
    /// Still failing; kept, with the new error.
    Failed(String),
}

/// Re-apply parked messages of `consumer` through `handler`, each inside
/// one transaction with its ledger row and the removal of its parked row,
/// as the consumer would have. Returns each row's id and outcome.
pub fn replay(
    db: &Db,
    consumer: &str,
    which: Replay,
    producers: Option<&Producers>,
    handler: &mut impl Handler,
) -> Result<Vec<(i64, Replayed)>, DbError> {
    let mut conn = db.get()?;
    let ids: Vec<i64> = list_parked(&mut *conn, consumer)?
        .into_iter()
        .filter(|p| match which {
            Replay::All => true,
            Replay::Row(id) => p.id == id,
            Replay::Event(id) => p.event_id == Some(id),
        })
        .map(|p| p.id)
        .collect();
    let mut outcomes = Vec::new();
    for id in ids {
        let mut tx = conn.transaction()?;
        let Some(row) = tx.query_opt(
            "SELECT topic, payload FROM kit_parked_events WHERE id = $1 AND consumer = $2 FOR UPDATE",
            &[&id, &consumer],
        )?
        else {
            // Replayed meanwhile by someone else.
            continue;
        };
        let topic: String = row.get(0);
        let payload: Option<Vec<u8>> = row.get(1);
        let outcome = replay_one(
            &mut tx,
            consumer,
            &topic,
            payload.as_deref(),
            producers,
            handler,
        );
        let outcome = match outcome {
            Ok(applied) => {
                tx.execute("DELETE FROM kit_parked_events WHERE id = $1", &[&id])?;
                tx.commit()?;
                if applied {
                    Replayed::Applied
                } else {
                    Replayed::Skipped
                }
            }
            Err(error) => {
                drop(tx);
                conn.execute(
                    "UPDATE kit_parked_events SET error = $2 WHERE id = $1",
                    &[&id, &error],
                )?;
                Replayed::Failed(error)
            }
        };
        tracing::info!(id, ?outcome, "replayed a parked message");
        outcomes.push((id, outcome));
    }
    let parked = parked_count(&mut *conn)?;
    tracing::info!(parked_events = parked, "replay done");
    Ok(outcomes)
}

fn replay_one(
    tx: &mut Transaction<'_>,
    consumer: &str,
    topic: &str,
    payload: Option<&[u8]>,
    producers: Option<&Producers>,
    handler: &mut impl Handler,
) -> Result<bool, String> {
    let envelope: Envelope = serde_json::from_slice(payload.unwrap_or_default())
        .map_err(|e| format!("not an event envelope: {e}"))?;
    if let Some(why) = producers.and_then(|p| p.mistrust(topic, &envelope)) {
        return Err(why);
    }
    if !handler.wants(topic, &envelope.kind) {
        return Ok(false);
    }
    if !handler.understands(topic, &envelope.kind, envelope.version) {
        return Err(format!(
            "version {} of `{}` is unknown to this build",
            envelope.version, envelope.kind
        ));
    }
    // A savepoint: a failed handler leaves the transaction usable.
    let mut inner = tx.transaction().map_err(|e| crate::db::describe(&e))?;
    match apply_in(
        &mut inner,
        consumer,
        topic,
        &envelope,
        handler,
        &ConsumerMetrics::default(),
    ) {
        Ok(fresh) => {
            inner.commit().map_err(|e| crate::db::describe(&e))?;
            Ok(fresh)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Remove ledger rows older than `retention`: an event that old is no
/// longer on any topic, so it cannot be delivered again.
pub fn forget_processed(db: &Db, retention: Duration) -> Result<u64, DbError> {
    let mut conn = db.get()?;
    Ok(conn.execute(
        "DELETE FROM kit_processed_events WHERE processed_at < now() - make_interval(secs => $1)",
        &[&retention.as_secs_f64()],
    )?)
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
