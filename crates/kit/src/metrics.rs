//! Metrics, for the monitoring scraper only.
//!
//! With `TEIPSUM_METRICS_LISTEN` set, a service binds a second listener
//! that serves `GET /metrics` in the OpenMetrics text format and nothing
//! else; the public listener never serves it, so the edge cannot expose it.
//! A client that does not ask for OpenMetrics in its `Accept` header
//! (`curl | promtool check metrics`) gets the same families in the
//! Prometheus text format, as Prometheus's own clients do.
//! Names follow OpenTelemetry's semantic conventions in their Prometheus
//! form where there are some (`http_server_request_duration_seconds`),
//! and `teipsum_` otherwise:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code` |
//! | `http_server_active_requests` | gauge | `http_request_method` |
//! | `db_client_connection_count` | gauge | `state` (`idle`, `used`) |
//! | `db_client_connection_max` | gauge | |
//! | `db_client_connection_wait_time_seconds` | histogram | |
//! | `teipsum_outbox_waiting`, `teipsum_outbox_oldest_age_seconds` | gauge | |
//! | `teipsum_events_published_total` | counter | `topic` |
//! | `teipsum_events_consumed_total` | counter | `topic`, `outcome` |
//! | `teipsum_event_handler_duration_seconds` | histogram | `topic` |
//! | `teipsum_events_parked` | gauge | |
//! | `teipsum_consumer_lag` | gauge | `topic`, `partition` (read from the broker at each scrape) |
//! | `teipsum_consumer_assigned_partitions` | gauge | |
//! | `teipsum_consumer_busy_seconds` | gauge | (time on the batch being applied; 0 between batches) |
//! | `teipsum_db_live_tuples`, `teipsum_db_dead_tuples` | gauge | `table` (the service's own tables) |
//! | `teipsum_build_info` | gauge (1) | `service`, `version` |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds` | | |
//!
//! Label values are bounded: `http_route` is the route's template from the
//! service's OpenAPI document (`/api/products/{id}`), `/healthz` or
//! `/readyz`, and `other` for every path that matches none, so that probes
//! of random paths add no series; a method outside the standard ones is
//! `_OTHER`. Services add their own families with [`Metrics::register`]
//! and [`Metrics::from_database`].
//!
//! Values read from the database (the outbox, parked events, a service's
//! own counts) are read when Prometheus scrapes, each read bounded by
//! [`DATABASE_READ_TIMEOUT`]; when the database does not answer, those
//! families are left out of that scrape and the rest is still served.

use std::{
    collections::BTreeSet,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::{Duration, Instant},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text::encode},
    metrics::{
        MetricType, counter::Counter, family::Family, gauge::ConstGauge, gauge::Gauge,
        histogram::Histogram,
    },
    registry::{Metric, Registry, Unit},
};

use crate::db::{Conn, Db};

/// The `Content-Type` of `/metrics` in the OpenMetrics text format, which
/// Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of the Prometheus text format (0.0.4), for a client
/// that does not ask for OpenMetrics (`curl`, `promtool check metrics`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two formats `/metrics` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0 ([`CONTENT_TYPE`]).
    OpenMetrics,
    /// Prometheus text 0.0.4 ([`TEXT_CONTENT_TYPE`]).
    Text,
}

impl Format {
    /// What a client's `Accept` header asks for: OpenMetrics when it names
    /// it (as Prometheus does), the Prometheus text format otherwise.
    pub fn accepted(accept: Option<&str>) -> Format {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// Buckets of every latency histogram of the kit, in seconds (those
/// OpenTelemetry recommends for `http.server.request.duration`); the
/// generated latency alerts count requests below one of them.
pub const LATENCY_BUCKETS: [f64; 11] = teipsum_conventions::metrics::DURATION_BUCKETS;

/// The longest one request to the broker for the consumer lag may take.
pub const LAG_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a scrape waits for the consumer lag. A reading that takes
/// longer (a busy broker: a few requests per topic, each up to
/// [`LAG_READ_TIMEOUT`]) goes on, the scrape shows the previous one, and
/// the next scrape takes up the new one: a slow broker never makes the
/// whole scrape fail, which would reset every pending alert of the target.
pub const LAG_WAIT: Duration = Duration::from_secs(1);

/// How old the lag shown may be when no reading succeeds: after that its
/// series are left out rather than shown stale.
pub const LAG_KEEP: Duration = Duration::from_secs(60);

/// A reading of the consumer lag under way.
type LagRead = tokio::task::JoinHandle<
    Result<Vec<(String, crate::kafka::PartitionLag)>, rdkafka::error::KafkaError>,
>;

/// The longest a scrape waits for one read from the database: well inside
/// Prometheus's default 10 s scrape timeout, so that a slow database costs
/// its own families, never the whole scrape.
pub const DATABASE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A gauge of `f64` values.
pub type GaugeF64 = Gauge<f64, AtomicU64>;

/// A family of histograms with [`LATENCY_BUCKETS`].
type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// A histogram with [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A label set without labels, for families read at scrape time that may
/// be absent (an empty family is left out of the exposition).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

/// `table`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// `topic`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: Arc<str>,
}

/// `topic`, `outcome`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumedLabels {
    topic: Arc<str>,
    outcome: &'static str,
}

/// `topic`, `partition`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct PartitionLabels {
    topic: Arc<str>,
    partition: i32,
}

/// `http_request_method`, `http_route`, `http_response_status_code`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    http_request_method: &'static str,
    http_route: &'static str,
    http_response_status_code: u16,
}

/// `http_request_method`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    http_request_method: &'static str,
}

/// `service`, `version`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: &'static str,
    version: &'static str,
}

type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A service's metrics: what the kit measures, what the service adds, and
/// the exposition of both.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    refreshes: Arc<Mutex<Vec<Refresh>>>,
    http: HttpMetrics,
    relay: RelayMetrics,
    pool_wait: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The kit's families for `service`, whose routes are `templates` (the
    /// paths of its OpenAPI document); the kit's own routes are added.
    pub fn new<'a>(service: &'static str, templates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                service,
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "teipsum_build_info",
            "The service and the version of its build (always 1)",
            build,
        );
        registry.register_collector(Box::new(ProcessCollector));

        let http = HttpMetrics::new(templates);
        let (duration, active) = http.families();
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests, until the response head",
            Unit::Seconds,
            duration,
        );
        registry.register(
            "http_server_active_requests",
            "HTTP server requests being answered now",
            active,
        );

        let pool_wait = latency_histogram();
        registry.register_with_unit(
            "db_client_connection_wait_time",
            "Time it took to get a connection from the PostgreSQL pool",
            Unit::Seconds,
            pool_wait.clone(),
        );

        let relay = RelayMetrics::default();
        registry.register(
            "teipsum_events_published",
            "Events the relay published and the broker acknowledged",
            relay.published.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            refreshes: Arc::default(),
            http,
            relay,
            pool_wait,
        }
    }

    /// Register a service's own family (`name` without the `_total` a
    /// counter gets in the exposition).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .expect("not poisoned")
            .register(name, help, metric);
    }

    /// [`Metrics::register`] with a unit, which ends the exposed name
    /// (`teipsum_order_completion` in seconds: `teipsum_order_completion_seconds`).
    pub fn register_with_unit(&self, name: &str, help: &str, unit: Unit, metric: impl Metric) {
        self.registry
            .lock()
            .expect("not poisoned")
            .register_with_unit(name, help, unit, metric);
    }

    /// At every scrape, `read` from `db` (within [`DATABASE_READ_TIMEOUT`])
    /// and hand `show` what it read, or `None` when the database did not
    /// answer: `show` then clears its families, so that they are left out
    /// rather than stale.
    pub fn from_database<T, R, S>(&self, db: &Db, read: R, show: S)
    where
        T: Send + 'static,
        R: Fn(&mut Conn) -> Result<T, postgres::Error> + Clone + Send + Sync + 'static,
        S: Fn(Option<T>) + Send + Sync + 'static,
    {
        let db = db.clone();
        let show = Arc::new(show);
        let refresh: Refresh = Arc::new(move || {
            let db = db.clone();
            let read = read.clone();
            let show = show.clone();
            Box::pin(async move {
                let read = db.run(move |conn| read(conn).map_err(crate::db::DbError::from));
                match tokio::time::timeout(DATABASE_READ_TIMEOUT, read).await {
                    Ok(Ok(value)) => show(Some(value)),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %crate::db::describe(&e), "a metric could not be read");
                        show(None)
                    }
                    Err(_) => show(None),
                }
            })
        });
        self.refreshes.lock().expect("not poisoned").push(refresh);
    }

    /// The pool's connections by state and its size, read at each scrape,
    /// and the time callers wait for a connection (see [`Db::observed`]).
    pub(crate) fn watch_pool(&self, db: &Db) {
        self.registry
            .lock()
            .expect("not poisoned")
            .register_collector(Box::new(PoolCollector(db.clone())));
    }

    /// The histogram of pool waits, for [`Db::observed`].
    pub(crate) fn pool_wait(&self) -> Histogram {
        self.pool_wait.clone()
    }

    /// The outbox's backlog and the parked events, read at each scrape.
    pub(crate) fn watch_events(&self, db: &Db) {
        let waiting = Family::<NoLabels, Gauge>::default();
        let oldest = Family::<NoLabels, GaugeF64>::default();
        let parked = Family::<NoLabels, Gauge>::default();
        self.register(
            "teipsum_outbox_waiting",
            "Events in the outbox not published yet",
            waiting.clone(),
        );
        self.register_with_unit(
            "teipsum_outbox_oldest_age",
            "How long the oldest event not published yet has waited in the outbox (0 when none waits)",
            Unit::Seconds,
            oldest.clone(),
        );
        self.register(
            "teipsum_events_parked",
            "Events the consumer could not apply, kept for `events replay`",
            parked.clone(),
        );
        let read = |conn: &mut Conn| crate::events::backlog(&mut **conn);
        self.from_database(db, read, move |backlog| match backlog {
            Some(b) => {
                waiting.get_or_create(&NoLabels {}).set(b.waiting);
                oldest
                    .get_or_create(&NoLabels {})
                    .set(b.oldest.map_or(0.0, |d| d.as_secs_f64()));
                parked.get_or_create(&NoLabels {}).set(b.parked);
            }
            None => {
                waiting.clear();
                oldest.clear();
                parked.clear();
            }
        });
    }

    /// Live and dead rows of each of the service's own tables
    /// (`pg_stat_user_tables` of its database), read at each scrape: the
    /// PostgreSQL exporter connects to one database, so only the services
    /// see their own tables' bloat.
    pub(crate) fn watch_tables(&self, db: &Db) {
        let live = Family::<TableLabel, Gauge>::default();
        let dead = Family::<TableLabel, Gauge>::default();
        self.register(
            "teipsum_db_live_tuples",
            "Live rows of the service's table (PostgreSQL's estimate)",
            live.clone(),
        );
        self.register(
            "teipsum_db_dead_tuples",
            "Dead rows of the service's table that autovacuum has not removed yet",
            dead.clone(),
        );
        let read = |conn: &mut Conn| {
            conn.query(
                "SELECT relname::text, n_live_tup, n_dead_tup FROM pg_stat_user_tables",
                &[],
            )
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        (
                            r.get::<_, String>(0),
                            r.get::<_, i64>(1),
                            r.get::<_, i64>(2),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        };
        self.from_database(db, read, move |tables| {
            live.clear();
            dead.clear();
            for (table, l, d) in tables.unwrap_or_default() {
                let label = TableLabel { table };
                live.get_or_create(&label).set(l);
                dead.get_or_create(&label).set(d);
            }
        });
    }

    /// What the relay counts.
    pub(crate) fn relay(&self) -> RelayMetrics {
        self.relay.clone()
    }

    /// What the HTTP server measures.
    pub(crate) fn http(&self) -> HttpMetrics {
        self.http.clone()
    }

    /// The consumer's families, for a service that consumes `topics` as
    /// `group` on `brokers`: every outcome of every topic starts at 0, so
    /// that rates exist from the start. The lag is read from the broker at
    /// each scrape (the group's committed offsets against the high
    /// watermarks, as `kafka-consumer-groups.sh --describe` reads it, within
    /// [`LAG_READ_TIMEOUT`] a request), so that it grows while the
    /// consumer is stuck. A scrape waits [`LAG_WAIT`] for it, and shows the
    /// last reading when the broker is slower; when no reading succeeded
    /// for [`LAG_KEEP`] the lag is left out.
    pub(crate) fn consumer(
        &self,
        topics: &[&str],
        brokers: &str,
        group: &str,
    ) -> Result<ConsumerMetrics, rdkafka::error::KafkaError> {
        let metrics = ConsumerMetrics::default();
        let reader = Arc::new(crate::kafka::lag_reader(brokers, group)?);
        let watched: Arc<[String]> = topics.iter().map(|t| (*t).to_owned()).collect();
        let shown = metrics.clone();
        // The reading under way, when a scrape stopped waiting for it: the
        // next scrape takes it up rather than asking the broker again.
        let pending: Arc<tokio::sync::Mutex<Option<LagRead>>> = Arc::default();
        // When the lags shown were read.
        let read_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let refresh: Refresh = Arc::new(move || {
            let (reader, watched, shown) = (reader.clone(), watched.clone(), shown.clone());
            let (pending, read_at) = (pending.clone(), read_at.clone());
            Box::pin(async move {
                let mut slot = pending.lock().await;
                let mut read = slot.take().unwrap_or_else(|| {
                    tokio::task::spawn_blocking(move || {
                        let mut lags = Vec::new();
                        for topic in watched.iter() {
                            for lag in
                                crate::kafka::partition_lags(&reader, topic, LAG_READ_TIMEOUT)?
                            {
                                lags.push((topic.clone(), lag));
                            }
                        }
                        Ok(lags)
                    })
                });
                let fresh = match tokio::time::timeout(LAG_WAIT, &mut read).await {
                    Ok(Ok(Ok(lags))) => Some(lags),
                    Ok(Ok(Err(e))) => {
                        tracing::debug!(error = %e, "the consumer lag could not be read");
                        None
                    }
                    Ok(Err(_)) => None,
                    Err(_) => {
                        *slot = Some(read);
                        None
                    }
                };
                let mut read_at = read_at.lock().expect("not poisoned");
                match fresh {
                    Some(lags) => {
                        shown.show_lags(&lags);
                        *read_at = Some(Instant::now());
                    }
                    None if read_at.is_some_and(|at| at.elapsed() <= LAG_KEEP) => {}
                    None => {
                        shown.show_lags(&[]);
                        *read_at = None;
                    }
                }
            })
        });
        self.refreshes.lock().expect("not poisoned").push(refresh);
        for topic in topics {
            let topic: Arc<str> = Arc::from(*topic);
            for outcome in Outcome::ALL {
                let _ = metrics.consumed.get_or_create(&ConsumedLabels {
                    topic: topic.clone(),
                    outcome: outcome.label(),
                });
            }
            let _ = metrics
                .handler_duration
                .get_or_create(&TopicLabel { topic });
        }
        let mut registry = self.registry.lock().expect("not poisoned");
        registry.register(
            "teipsum_events_consumed",
            "Events the consumer took from the broker, by what became of them",
            metrics.consumed.clone(),
        );
        registry.register_with_unit(
            "teipsum_event_handler_duration",
            "Time the service's handler took for one event, inside its transaction",
            Unit::Seconds,
            metrics.handler_duration.clone(),
        );
        registry.register(
            "teipsum_consumer_lag",
            "Events on the broker the consumer group has not committed yet, per partition (read from the broker at each scrape)",
            metrics.lag.clone(),
        );
        registry.register_collector(Box::new(BusyCollector(metrics.busy.clone())));
        registry.register(
            "teipsum_consumer_assigned_partitions",
            "Partitions assigned to this consumer now",
            metrics.assigned.clone(),
        );
        Ok(metrics)
    }

    /// The exposition in `format`: reads what is read at scrape time, then
    /// encodes every family (OpenMetrics ending with `# EOF`).
    pub async fn scrape(&self, format: Format) -> String {
        let refreshes: Vec<Refresh> = self.refreshes.lock().expect("not poisoned").clone();
        futures::future::join_all(refreshes.iter().map(|r| r())).await;
        let mut text = String::with_capacity(16 * 1024);
        let registry = self.registry.lock().expect("not poisoned");
        match format {
            Format::OpenMetrics => encode(&mut text, &registry),
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            }
        }
        .expect("writing to a String does not fail");
        text
    }
}

/// What became of a consumed event (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied in a transaction with its ledger row.
    Applied,
    /// Applied before (the ledger had it): redelivered, nothing done.
    Duplicate,
    /// Not for this consumer (a kind it does not act on).
    Skipped,
    /// Could not be applied; kept in `kit_parked_events`.
    Parked,
}

impl Outcome {
    /// Every outcome.
    const ALL: [Outcome; 4] = [
        Outcome::Applied,
        Outcome::Duplicate,
        Outcome::Skipped,
        Outcome::Parked,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Skipped => "skipped",
            Outcome::Parked => "parked",
        }
    }
}

/// What the relay counts. The default counts into families of no registry
/// (tests, operators' commands).
#[derive(Debug, Clone, Default)]
pub struct RelayMetrics {
    published: Family<TopicLabel, Counter>,
}

impl RelayMetrics {
    /// `n` events of `topic` are on the broker.
    pub(crate) fn published(&self, topic: &str, n: u64) {
        self.published
            .get_or_create(&TopicLabel {
                topic: Arc::from(topic),
            })
            .inc_by(n);
    }
}

/// What the consumer counts and measures, and what librdkafka tells of its
/// partitions. The default counts into families of no registry.
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    consumed: Family<ConsumedLabels, Counter>,
    handler_duration: Latencies<TopicLabel>,
    lag: Family<PartitionLabels, Gauge>,
    assigned: Gauge,
    /// The partitions `lag` has a series for, to drop those that go away.
    lagging: Arc<Mutex<BTreeSet<PartitionLabels>>>,
    /// When the batch being applied now was taken; `None` between batches.
    busy: Arc<Mutex<Option<Instant>>>,
}

impl Default for ConsumerMetrics {
    fn default() -> Self {
        ConsumerMetrics {
            consumed: Family::default(),
            handler_duration: Family::new_with_constructor(latency_histogram),
            lag: Family::default(),
            assigned: Gauge::default(),
            lagging: Arc::default(),
            busy: Arc::default(),
        }
    }
}

impl ConsumerMetrics {
    /// One event of `topic` ended as `outcome`.
    pub(crate) fn consumed(&self, topic: &str, outcome: Outcome) {
        self.consumed
            .get_or_create(&ConsumedLabels {
                topic: Arc::from(topic),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The handler took `elapsed` for one event of `topic`.
    pub(crate) fn handled(&self, topic: &str, elapsed: Duration) {
        self.handler_duration
            .get_or_create(&TopicLabel {
                topic: Arc::from(topic),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The consumer took a batch and applies it now.
    pub(crate) fn busy(&self) {
        *self.busy.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// The consumer is done with its batch.
    pub(crate) fn idle(&self) {
        *self.busy.lock().expect("not poisoned") = None;
    }

    /// The consumer holds `n` partitions now.
    pub(crate) fn assigned(&self, n: usize) {
        self.assigned.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The lag of each partition as just read; partitions not in `lags`
    /// (all of them, when the broker did not answer) lose their series.
    fn show_lags(&self, lags: &[(String, crate::kafka::PartitionLag)]) {
        let mut now = BTreeSet::new();
        for (topic, lag) in lags {
            let labels = PartitionLabels {
                topic: Arc::from(topic.as_str()),
                partition: lag.partition,
            };
            self.lag.get_or_create(&labels).set(lag.lag);
            now.insert(labels);
        }
        let mut lagging = self.lagging.lock().expect("not poisoned");
        for gone in lagging.difference(&now) {
            self.lag.remove(gone);
        }
        *lagging = now;
    }
}

/// The route templates of a service, to label a request by its route.
///
/// The templates are leaked once, when the service starts: a request's
/// labels then hold `&'static str`s, with no reference count to touch on
/// the hot path (a handful of short strings per process).
#[derive(Debug)]
struct Routes {
    /// Segments of each template (`None` for a `{parameter}`), most
    /// specific first: of two templates that match a path, the one with a
    /// literal segment where the other has a parameter wins
    /// (`/api/users/me` before `/api/users/{id}`).
    templates: Vec<(Vec<Option<String>>, &'static str)>,
}

impl Routes {
    fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut templates: Vec<(Vec<Option<String>>, &'static str)> = templates
            .into_iter()
            .chain(["/healthz", "/readyz"])
            .map(|template| {
                let segments = segments(template)
                    .map(|s| {
                        let parameter = s.starts_with('{') && s.ends_with('}');
                        (!parameter).then(|| s.to_owned())
                    })
                    .collect();
                let name: &'static str = Box::leak(template.to_owned().into_boxed_str());
                (segments, name)
            })
            .collect();
        templates.sort_by(|(a, _), (b, _)| {
            a.len().cmp(&b.len()).then_with(|| {
                a.iter()
                    .map(Option::is_none)
                    .cmp(b.iter().map(Option::is_none))
            })
        });
        templates.dedup_by(|(a, _), (b, _)| a == b);
        Routes { templates }
    }

    /// The template `path` matches, else `other`. Trailing slashes do not
    /// count (warp routes `/api/orders` and `/api/orders/` alike).
    fn route(&self, path: &str) -> &'static str {
        let wanted = segments(path).count();
        self.templates
            .iter()
            .filter(|(template, _)| template.len() == wanted)
            .find(|(template, _)| {
                template
                    .iter()
                    .zip(segments(path))
                    .all(|(t, s)| t.as_deref().is_none_or(|t| t == s))
            })
            .map_or("other", |(_, name)| *name)
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The method as a label value: the standard methods, else `_OTHER`, so
/// that made-up methods add no series.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::CONNECT => "CONNECT",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::TRACE => "TRACE",
        http::Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// What the HTTP server measures of each request.
#[derive(Debug, Clone)]
pub(crate) struct HttpMetrics(&'static HttpInner);

#[derive(Debug)]
struct HttpInner {
    routes: Routes,
    duration: Family<RequestLabels, RequestHistogram>,
    active: Family<MethodLabel, ActiveGauge>,
    /// `active`'s gauge of each method label, made once (every method
    /// then shows, at 0): no lookup per request.
    active_by_method: Vec<(&'static str, ActiveGauge)>,
}

/// Every value of the `http_request_method` label.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

impl HttpMetrics {
    fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let active = Family::<MethodLabel, ActiveGauge>::default();
        let active_by_method = METHODS
            .iter()
            .map(|m| {
                let labels = MethodLabel {
                    http_request_method: m,
                };
                (*m, active.get_or_create_owned(&labels))
            })
            .collect();
        // Leaked once per process (a service makes one): a request's guard
        // then holds a plain reference, with no reference count shared by
        // the cores to touch twice per request.
        HttpMetrics(Box::leak(Box::new(HttpInner {
            routes: Routes::new(templates),
            duration: Family::default(),
            active,
            active_by_method,
        })))
    }

    fn families(
        &self,
    ) -> (
        Family<RequestLabels, RequestHistogram>,
        Family<MethodLabel, ActiveGauge>,
    ) {
        (self.0.duration.clone(), self.0.active.clone())
    }

    /// A request starts: it is active until the returned guard drops.
    pub(crate) fn begin(&self, method: &http::Method, path: &str) -> InFlight {
        let method = method_label(method);
        let active = self
            .0
            .active_by_method
            .iter()
            .position(|(m, _)| *m == method)
            .unwrap_or(METHODS.len() - 1);
        self.0.active_by_method[active].1.add(1);
        InFlight {
            metrics: self.clone(),
            method,
            active,
            route: self.0.routes.route(path),
            started: Instant::now(),
        }
    }
}

/// A request being answered (see [`HttpMetrics::begin`]).
pub(crate) struct InFlight {
    metrics: HttpMetrics,
    method: &'static str,
    /// Its gauge in `active_by_method`.
    active: usize,
    route: &'static str,
    started: Instant,
}

impl InFlight {
    /// The response head is ready, with `status`.
    pub(crate) fn answered(&self, status: u16) {
        let elapsed = self.started.elapsed();
        let inner = self.metrics.0;
        let key = SeriesKey {
            metrics: std::ptr::from_ref(inner) as usize,
            method: self.method.as_ptr() as usize,
            route: self.route.as_ptr() as usize,
            status,
        };
        SERIES.with_borrow_mut(|series| {
            series
                .entry(key)
                .or_insert_with(|| {
                    inner.duration.get_or_create_owned(&RequestLabels {
                        http_request_method: self.method,
                        http_route: self.route,
                        http_response_status_code: status,
                    })
                })
                .observe(elapsed);
        });
    }
}

thread_local! {
    /// The histograms this thread has observed into, by [`SeriesKey`]:
    /// after a series' first request on a thread, no lock and no hash of
    /// the label strings (the family's map takes both).
    static SERIES: std::cell::RefCell<
        std::collections::HashMap<SeriesKey, RequestHistogram, std::hash::BuildHasherDefault<WordHasher>>,
    > = std::cell::RefCell::default();
}

/// A request's series by identity: the [`HttpInner`] (leaked, so never
/// reused) and its `&'static` label strings by address, and the status.
/// Two addresses of equal strings only make two entries for one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    metrics: usize,
    method: usize,
    route: usize,
    status: u16,
}

/// A hasher for keys of a few machine words ([`SeriesKey`]): a multiply
/// and a rotation a word (as rustc's FxHasher), where the default SipHash
/// guards against chosen keys that these never are.
#[derive(Debug, Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u16(&mut self, word: u16) {
        self.write_u64(u64::from(word));
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// Slots per sharded metric: a thread updates the slot of its own number
/// modulo this, on a cache line of its own, so that the cores do not take
/// one line from each other at every request; a scrape sums the slots.
const SHARDS: usize = 16;

/// A value on a cache line of its own (128 bytes: two lines, as the
/// adjacent-line prefetcher of x86 fetches pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// This thread's slot of a sharded metric.
fn shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// `http_server_active_requests` of one method: a gauge sharded by thread
/// (a request may end on another thread than it began; the sum is right).
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveGauge(Arc<[Padded<std::sync::atomic::AtomicI64>; SHARDS]>);

impl ActiveGauge {
    fn add(&self, n: i64) {
        self.0[shard()]
            .0
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> i64 {
        self.0
            .iter()
            .map(|slot| slot.0.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}

impl prometheus_client::metrics::TypedMetric for ActiveGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for ActiveGauge {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// The request duration histogram, with [`LATENCY_BUCKETS`]: counts in
/// atomics sharded by thread (see [`SHARDS`]) instead of
/// prometheus-client's mutex, since every request of a route on every core
/// lands in the same one. The sum is counted in nanoseconds, exactly. The
/// count is the sum of the buckets, so a scrape never sees them disagree;
/// the sum may miss an observation being added.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestHistogram(Arc<[Padded<HistogramSlot>; SHARDS]>);

#[derive(Debug, Default)]
struct HistogramSlot {
    /// One per bound of [`LATENCY_BUCKETS`], then `+Inf`; not cumulative.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// The sum of the observations, in nanoseconds (584 years fit).
    sum_nanos: AtomicU64,
}

impl RequestHistogram {
    fn observe(&self, elapsed: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        let slot = &self.0[shard()].0;
        slot.buckets[bucket].fetch_add(1, Relaxed);
        slot.sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }
}

impl prometheus_client::metrics::TypedMetric for RequestHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for RequestHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .enumerate()
            .map(|(i, bound)| {
                let n = self
                    .0
                    .iter()
                    .map(|slot| slot.0.buckets[i].load(Relaxed))
                    .sum();
                (bound, n)
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let nanos: u64 = self
            .0
            .iter()
            .map(|slot| slot.0.sum_nanos.load(Relaxed))
            .sum();
        let sum = nanos as f64 / 1e9;
        encoder.encode_histogram::<NoLabels>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Drop for InFlight {
    /// Answered, failed or abandoned by the client: no longer active.
    fn drop(&mut self) {
        self.metrics.0.active_by_method[self.active].1.add(-1);
    }
}

/// The pool's connections by state, read at each scrape (no I/O). Help
/// texts of collectors end with a full stop as [`Registry::register`] adds one.
#[derive(Debug)]
struct PoolCollector(Db);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (state, max) = self.0.pool_state();
        let idle = u64::from(state.idle_connections);
        let used = u64::from(state.connections).saturating_sub(idle);
        let mut count = encoder.encode_descriptor(
            "db_client_connection_count",
            "PostgreSQL connections of the pool, by state.",
            None,
            MetricType::Gauge,
        )?;
        for (label, value) in [("idle", idle), ("used", used)] {
            ConstGauge::new(value as i64).encode(count.encode_family(&[("state", label)])?)?;
        }
        let max_metric = ConstGauge::new(i64::from(max));
        max_metric.encode(encoder.encode_descriptor(
            "db_client_connection_max",
            "The most connections the pool opens.",
            None,
            max_metric.metric_type(),
        )?)
    }
}

/// How long the consumer has been on its batch, at each scrape (no I/O):
/// unlike the lag, which librdkafka reports only when the consumer polls,
/// this grows while a handler waits.
#[derive(Debug)]
struct BusyCollector(Arc<Mutex<Option<Instant>>>);

impl Collector for BusyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let since = *self.0.lock().expect("not poisoned");
        let busy = ConstGauge::new(since.map_or(0.0, |t| t.elapsed().as_secs_f64()));
        busy.encode(encoder.encode_descriptor(
            "teipsum_consumer_busy",
            "Time the consumer has spent on the batch of events it is applying now (0 between batches).",
            Some(&Unit::Seconds),
            busy.metric_type(),
        )?)
    }
}

/// The process metrics of the Prometheus client convention, from
/// `/proc/self` at each scrape; what cannot be read is left out.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self/stat` and `/proc/stat` tell.
struct ProcessStat {
    cpu_seconds: f64,
    resident_bytes: u64,
    start_time_seconds: f64,
}

fn process_stat() -> Option<ProcessStat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, which may hold spaces), the
    // fields from the third on: utime is the 14th, stime the 15th,
    // starttime the 22nd and rss the 24th (proc(5)).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let boot_time: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    Some(ProcessStat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        resident_bytes: field(24)? * rustix::param::page_size() as u64,
        start_time_seconds: boot_time as f64 + field(22)? as f64 / ticks,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stat) = process_stat() {
            let cpu = prometheus_client::metrics::counter::ConstCounter::new(stat.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
            let rss = ConstGauge::new(stat.resident_bytes as i64);
            rss.encode(encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory size.",
                Some(&Unit::Bytes),
                rss.metric_type(),
            )?)?;
            let start = ConstGauge::new(stat.start_time_seconds);
            start.encode(encoder.encode_descriptor(
                "process_start_time",
                "Start time of the process since the Unix epoch.",
                Some(&Unit::Seconds),
                start.metric_type(),
            )?)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = ConstGauge::new(fds.count() as i64);
            open.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors.",
                None,
                open.metric_type(),
            )?)?;
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = limit.current {
            let max = ConstGauge::new(i64::try_from(max).unwrap_or(i64::MAX));
            max.encode(encoder.encode_descriptor(
                "process_max_fds",
                "The most file descriptors the process may open.",
                None,
                max.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_histogram_encodes_cumulative_buckets_whose_last_is_the_count() {
        let histogram = RequestHistogram::default();
        for millis in [3, 300, 300, 20_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let mut registry = Registry::default();
        registry.register_with_unit("t", "t", Unit::Seconds, histogram);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "t_seconds_bucket{le=\"0.005\"} 1",
            "t_seconds_bucket{le=\"0.25\"} 1",
            "t_seconds_bucket{le=\"0.5\"} 3",
            "t_seconds_bucket{le=\"10.0\"} 3",
            "t_seconds_bucket{le=\"+Inf\"} 4",
            "t_seconds_count 4",
            "t_seconds_sum 20.603",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }

    #[test]
    fn requests_on_many_threads_add_up_in_one_series_per_label_set() {
        let http = HttpMetrics::new(["/api/products/{id}"]);
        let (duration, active) = http.families();
        std::thread::scope(|scope| {
            for _ in 0..(SHARDS + 3) {
                scope.spawn(|| {
                    for status in [200, 200, 404] {
                        let request = http.begin(&http::Method::GET, "/api/products/7");
                        request.answered(status);
                    }
                    // Still in flight when the thread ends: it is counted.
                    std::mem::forget(http.begin(&http::Method::POST, "/api/products/7"));
                });
            }
        });
        let mut registry = Registry::default();
        registry.register_with_unit("d", "d", Unit::Seconds, duration);
        registry.register("a", "a", active);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let threads = SHARDS + 3;
        for line in [
            format!(
                "d_seconds_count{{http_request_method=\"GET\",http_route=\"/api/products/{{id}}\",http_response_status_code=\"200\"}} {}",
                2 * threads
            ),
            format!(
                "d_seconds_count{{http_request_method=\"GET\",http_route=\"/api/products/{{id}}\",http_response_status_code=\"404\"}} {threads}"
            ),
            "a{http_request_method=\"GET\"} 0".to_owned(),
            format!("a{{http_request_method=\"POST\"}} {threads}"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert_eq!(text.matches("d_seconds_count{").count(), 2, "{text}");
    }

    #[test]
    fn requests_are_labelled_by_their_template_and_unknown_paths_by_other() {
        let routes = Routes::new([
            "/api/users/{id}",
            "/api/users/me",
            "/api/orders/",
            "/api/orders/{id}",
            "/api/orders/{id}/cancel",
        ]);
        let route = |path: &str| routes.route(path);
        assert_eq!(route("/api/users/me"), "/api/users/me");
        assert_eq!(route("/api/users/0f3c"), "/api/users/{id}");
        assert_eq!(route("/api/orders"), "/api/orders/");
        assert_eq!(route("/api/orders/"), "/api/orders/");
        assert_eq!(route("/api/orders/42/cancel"), "/api/orders/{id}/cancel");
        assert_eq!(route("/healthz"), "/healthz");
        assert_eq!(route("/readyz"), "/readyz");
        for unknown in [
            "/",
            "/metrics",
            "/api/orders/42/cancel/now",
            "/wp-login.php",
        ] {
            assert_eq!(route(unknown), "other", "{unknown}");
        }
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&http::Method::PATCH), "PATCH");
        let made_up = http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "_OTHER");
    }

    #[test]
    fn process_metrics_are_read_from_proc() {
        let stat = process_stat().expect("/proc/self/stat is readable");
        assert!(stat.resident_bytes > 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stat.start_time_seconds <= now + 1.0 && stat.start_time_seconds > now - 86_400.0,
            "{} against {now}",
            stat.start_time_seconds
        );
    }
}
