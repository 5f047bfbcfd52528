//! `/metrics` of a service the kit runs, in-process, against a real
//! PostgreSQL cluster and a real tansu broker: its own listener, the
//! families it exposes, the labels they carry, and what the events that
//! flow through the outbox, the broker and the consumer do to them.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use rdkafka::producer::FutureRecord;
use teipsum_conventions::env;
use teipsum_kit::{
    ConsumerSpec, Parts, Running, Service,
    db::{Db, advisory_key},
    events::{self, Envelope, HandleError},
    kafka,
    settings::{Settings, Source},
};
use teipsum_testkit::{
    Postgres, Tansu,
    metrics::{Scrape, promtool_check, scrape, scrape_accepting},
};
use warp::Filter;

/// `GET /api/things/{id}`: the probe's one documented route.
#[utoipa::path(get, path = "/api/things/{id}", responses((status = 200, description = "The thing")))]
#[allow(dead_code)]
fn thing() {}

#[derive(utoipa::OpenApi)]
#[openapi(paths(thing))]
struct Api;

fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

const PROBE: Service = Service {
    name: "probe",
    migrations: || refinery::Runner::new(&[]),
    verifies_tokens: false,
    openapi,
};

/// The topic the probe both produces (through its outbox) and consumes.
const TOPIC: &str = "things";

/// The probe's settings, as a unit would give them, with both listeners on
/// port 0.
fn settings(conninfo: &str, broker: &Tansu) -> Settings {
    let map: BTreeMap<String, String> = [
        (env::SERVICE, "probe"),
        (env::LISTEN, "127.0.0.1:0"),
        (env::METRICS_LISTEN, "127.0.0.1:0"),
        (env::DATABASE, conninfo),
        (env::KAFKA_BROKERS, &broker.bootstrap),
        (env::KAFKA_GROUP, "probe-metrics"),
        (env::TOPIC_PRODUCERS, "things=probe"),
        (env::JWT_ISSUER, "https://teipsum.store"),
        (env::JWT_AUDIENCE, "teipsum"),
        (env::LOG, "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::from_source(Source::Map(map)).expect("the probe's settings")
}

/// Start the probe: `/api/things/{id}` answers, and a consumer of
/// `things` applies `thing-changed` events (any other kind is skipped).
async fn start_probe(settings: Settings) -> Running {
    teipsum_kit::service::start(&PROBE, settings, |_ctx| {
        let applied =
            |_: &mut postgres::Transaction<'_>, _: &str, _: &Envelope| Ok::<(), HandleError>(());
        Ok(Parts {
            routes: warp::path!("api" / "things" / String).map(|id: String| format!("thing {id}")),
            consumer: Some(ConsumerSpec {
                topics: vec![TOPIC],
                handler: Box::new(events::only(&["thing-changed"], applied)),
            }),
        })
    })
    .await
    .expect("the probe starts")
}

/// Scrape as Prometheus does, check the answer's type and parse it.
async fn scraped(addr: SocketAddr) -> Scrape {
    let (content_type, text) = scrape(addr).await.expect("/metrics answers");
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// What promtool's linter says of a name the contract with the alert rules
/// fixes: OpenTelemetry's `db.client.connection.count`, a gauge.
const ACCEPTED_LINT: &str = "db_client_connection_count non-histogram and non-summary metrics should not have \"_count\" suffix";

/// Scrape as `curl` does (the Prometheus text format) and have promtool
/// check it, when it is installed; nothing but [`ACCEPTED_LINT`] may come up.
async fn promtool_accepts(addr: SocketAddr) {
    let (content_type, text) = scrape_accepting(addr, "*/*")
        .await
        .expect("/metrics answers");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("# TYPE teipsum_events_consumed_total counter"),
        "{text}"
    );
    if let Some(Err(complaints)) = promtool_check(&text) {
        let other: Vec<&str> = complaints
            .lines()
            .filter(|l| !l.trim().is_empty() && l.trim() != ACCEPTED_LINT)
            .collect();
        assert!(
            other.is_empty(),
            "promtool check metrics: {other:?}\n{text}"
        );
    }
}

/// Scrape until `done` holds, for at most `timeout`.
async fn scraped_until(
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let started = Instant::now();
    loop {
        let scrape = scraped(addr).await;
        if done(&scrape) {
            return scrape;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}: {scrape:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn thing_event(subject: &str) -> Envelope {
    Envelope::new(
        "probe",
        "thing-changed",
        1,
        subject,
        serde_json::json!({"seq": 1}),
    )
}

/// Publish `payload` on partition `partition` of the probe's topic.
async fn produce(broker: &Tansu, partition: i32, key: &str, payload: &[u8]) {
    let producer = kafka::producer(&broker.bootstrap, "metrics-test").unwrap();
    producer
        .send(
            FutureRecord::to(TOPIC)
                .partition(partition)
                .key(key)
                .payload(payload),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_listener_serves_every_family_with_bounded_labels_and_the_public_one_does_not()
{
    let mut pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[(TOPIC, 2)])
        .expect("the topic is created");
    let conninfo = pg
        .create_database("metrics_probe")
        .expect("the database is created");
    let running = start_probe(settings(&conninfo, &broker)).await;
    let metrics = running.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics, running.addr);
    let public = format!("http://{}", running.addr);
    let http = teipsum_testkit::http_client().unwrap();

    // Two requests to one template, three probes of random paths.
    for id in ["42", "43"] {
        let r = http
            .get(format!("{public}/api/things/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for i in 0..3 {
        let r = http
            .get(format!("{public}/no/such/{}/{i}", uuid::Uuid::new_v4()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // The public listener has no /metrics: it is one more unknown path.
    let r = http.get(format!("{public}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "NOT_FOUND", "{body}");
    // And the metrics listener has nothing but /metrics.
    for path in ["/", "/healthz", "/api/things/42", "/metrics/more"] {
        let r = http
            .get(format!("http://{metrics}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "NOT_FOUND", "{path}: {body}");
    }

    let first = scraped(metrics).await;
    let requests = "http_server_request_duration_seconds_count";
    assert_eq!(
        first.value(
            requests,
            &[
                ("http_request_method", "GET"),
                ("http_route", "/api/things/{id}"),
                ("http_response_status_code", "200"),
            ]
        ),
        Some(2.0),
        "{first:#?}"
    );
    assert_eq!(
        first.value(
            requests,
            &[
                ("http_route", "other"),
                ("http_response_status_code", "404")
            ]
        ),
        Some(4.0),
        "three random paths and the public /metrics"
    );
    assert_eq!(
        first.label_values(requests, "http_route"),
        ["/api/things/{id}", "other"],
        "templates only, never a raw path"
    );
    assert_eq!(
        first.value(
            "http_server_active_requests",
            &[("http_request_method", "GET")]
        ),
        Some(0.0),
        "nothing in flight: scrapes are not counted"
    );

    // A row that waits: the relay cannot take its lock while the test holds
    // it. (Blocking PostgreSQL calls, off the runtime's own work.)
    let relay_lock = advisory_key("teipsum relay probe");
    let event = thing_event("t-1");
    let mut lock = tokio::task::block_in_place(|| {
        let db = Db::new(&conninfo, 1, None).unwrap();
        let mut lock = db.dedicated().unwrap();
        lock.execute("SELECT pg_advisory_lock($1)", &[&relay_lock])
            .unwrap();
        events::append(&mut *db.get().unwrap(), TOPIC, &event).unwrap();
        lock
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let waiting = scraped(metrics).await;
    assert_eq!(waiting.value("teipsum_outbox_waiting", &[]), Some(1.0));
    let age = waiting
        .value("teipsum_outbox_oldest_age_seconds", &[])
        .unwrap();
    assert!(age >= 1.0, "the row has waited over a second: {age}");
    assert_eq!(
        waiting.value("teipsum_events_published_total", &[("topic", TOPIC)]),
        None,
        "nothing published yet"
    );
    tokio::task::block_in_place(|| {
        lock.execute("SELECT pg_advisory_unlock($1)", &[&relay_lock])
            .unwrap();
        drop(lock);
    });

    // Published, consumed back and applied; then the same event again, a
    // kind the probe does not act on, and a message that is no event.
    let consumed = "teipsum_events_consumed_total";
    let outcome = |scrape: &Scrape, outcome: &str| {
        scrape
            .value(consumed, &[("topic", TOPIC), ("outcome", outcome)])
            .unwrap_or(0.0)
    };
    let flowed = scraped_until(
        metrics,
        "the event to be applied",
        Duration::from_secs(60),
        |s| outcome(s, "applied") == 1.0,
    )
    .await;
    assert_eq!(
        flowed.value("teipsum_events_published_total", &[("topic", TOPIC)]),
        Some(1.0)
    );
    assert_eq!(flowed.value("teipsum_outbox_waiting", &[]), Some(0.0));
    // The service's own tables, which the PostgreSQL exporter cannot see.
    for family in ["teipsum_db_live_tuples", "teipsum_db_dead_tuples"] {
        assert!(
            flowed
                .value(family, &[("table", "kit_outbox")])
                .is_some_and(|rows| rows >= 0.0),
            "{family} of kit_outbox"
        );
    }
    assert_eq!(
        flowed.value("teipsum_outbox_oldest_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(
        outcome(&flowed, "duplicate"),
        0.0,
        "every outcome starts at 0"
    );
    // (On both partitions, so that each has events and a committed offset.)
    produce(&broker, 0, "t-1", &serde_json::to_vec(&event).unwrap()).await;
    let other_kind = Envelope::new("probe", "thing-deleted", 1, "t-2", serde_json::json!({}));
    produce(&broker, 1, "t-2", &serde_json::to_vec(&other_kind).unwrap()).await;
    produce(&broker, 1, "t-3", b"not an event").await;
    let all = scraped_until(
        metrics,
        "a duplicate, a skipped and a parked event",
        Duration::from_secs(60),
        |s| {
            outcome(s, "duplicate") == 1.0
                && outcome(s, "skipped") == 1.0
                && outcome(s, "parked") == 1.0
        },
    )
    .await;
    assert_eq!(outcome(&all, "applied"), 1.0);
    assert_eq!(all.value("teipsum_events_parked", &[]), Some(1.0));
    assert_eq!(
        all.value(
            "teipsum_event_handler_duration_seconds_count",
            &[("topic", TOPIC)]
        ),
        Some(1.0),
        "the handler ran once: for the applied event"
    );

    // The lag of both partitions, read from the broker; both assigned.
    let lagging = scraped_until(
        metrics,
        "the lag of both partitions",
        Duration::from_secs(60),
        |s| s.label_values("teipsum_consumer_lag", "partition") == ["0", "1"],
    )
    .await;
    for partition in ["0", "1"] {
        let lag = lagging
            .value(
                "teipsum_consumer_lag",
                &[("topic", TOPIC), ("partition", partition)],
            )
            .unwrap();
        assert!(lag >= 0.0, "partition {partition}: {lag}");
    }
    assert_eq!(
        lagging.value("teipsum_consumer_assigned_partitions", &[]),
        Some(2.0)
    );
    // Between batches the consumer is not busy (the e2e monitoring test
    // shows it growing while a handler waits on a lock).
    assert_eq!(
        lagging.value("teipsum_consumer_busy_seconds", &[]),
        Some(0.0)
    );

    // Every family, in two scrapes in a row, each parsed; and in the
    // Prometheus text format, checked by promtool when it is installed.
    promtool_accepts(metrics).await;
    for scrape in [scraped(metrics).await, scraped(metrics).await] {
        // The names the generated alert rules read (teipsum_conventions::metrics).
        {
            use teipsum_conventions::metrics as m;
            for family in [
                m::HTTP_REQUEST_DURATION,
                m::HTTP_ACTIVE_REQUESTS,
                m::OUTBOX_WAITING,
                m::OUTBOX_OLDEST_AGE,
                m::EVENTS_PARKED,
                m::CONSUMER_LAG,
                m::CONSUMER_ASSIGNED_PARTITIONS,
                m::CONSUMER_BUSY,
            ] {
                assert!(
                    scrape.has(family),
                    "{family}, which the alert rules read, is missing"
                );
            }
        }
        for family in [
            "http_server_request_duration_seconds",
            "http_server_active_requests",
            "db_client_connection_count",
            "db_client_connection_max",
            "db_client_connection_wait_time_seconds",
            "teipsum_outbox_waiting",
            "teipsum_outbox_oldest_age_seconds",
            "teipsum_events_published",
            "teipsum_events_consumed",
            "teipsum_event_handler_duration_seconds",
            "teipsum_events_parked",
            "teipsum_db_dead_tuples",
            "teipsum_consumer_lag",
            "teipsum_consumer_assigned_partitions",
            "teipsum_consumer_busy_seconds",
            "teipsum_build_info",
            "process_cpu_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(scrape.has(family), "{family} is missing: {scrape:#?}");
        }
        let bucket = scrape
            .matching("http_server_request_duration_seconds_bucket", &[])
            .map(|s| s.labels["le"].clone())
            .collect::<std::collections::BTreeSet<_>>();
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
            "+Inf",
        ] {
            assert!(bucket.contains(le), "bucket {le}: {bucket:?}");
        }
        assert_eq!(scrape.value("db_client_connection_max", &[]), Some(16.0));
        assert!(
            scrape
                .value("db_client_connection_count", &[("state", "idle")])
                .is_some()
                && scrape
                    .value("db_client_connection_count", &[("state", "used")])
                    .is_some()
        );
        assert!(scrape.value("db_client_connection_wait_time_seconds_count", &[]) > Some(0.0));
        assert_eq!(
            scrape.value(
                "teipsum_build_info",
                &[("service", "probe"), ("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0)
        );
        assert!(scrape.value("process_resident_memory_bytes", &[]) > Some(0.0));
        assert!(scrape.value("process_open_fds", &[]) > Some(0.0));
        assert!(scrape.value("process_start_time_seconds", &[]) > Some(1.7e9));
    }

    // What an operator sees (`--no-capture` shows it).
    let (_, text) = scrape(metrics).await.expect("/metrics answers");
    println!("{text}");

    // Without its database the service still answers a scrape: what needs
    // the database is left out, the rest is there.
    pg.kill();
    let (_, text) = scrape(metrics).await.expect("/metrics answers");
    let down = Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for gone in [
        "teipsum_outbox_waiting",
        "teipsum_outbox_oldest_age_seconds",
        "teipsum_events_parked",
    ] {
        assert!(!down.has(gone), "{gone} without a database: {text}");
    }
    assert!(down.has("http_server_request_duration_seconds"));
    assert!(down.has("teipsum_events_consumed"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_metrics_address_there_is_no_metrics_listener() {
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    let conninfo = pg
        .create_database("metrics_none")
        .expect("the database is created");
    let mut settings = settings(&conninfo, &broker);
    settings.metrics_listen = None;
    let running = start_probe(settings).await;
    assert_eq!(running.metrics_addr, None);
    let status = teipsum_testkit::http_status(running.addr.port(), "/metrics");
    assert_eq!(status, Some(404));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_address_taken_stops_the_start_naming_it() {
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    let conninfo = pg
        .create_database("metrics_taken")
        .expect("the database is created");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = settings(&conninfo, &broker);
    settings.metrics_listen = Some(taken.local_addr().unwrap());
    let started = teipsum_kit::service::start(&PROBE, settings, |_ctx| {
        Ok(Parts {
            routes: warp::path!("hello").map(|| "hello"),
            consumer: None,
        })
    })
    .await;
    let error = match started {
        Ok(_) => panic!("started on a taken metrics address"),
        Err(e) => e.to_string(),
    };
    let addr = taken.local_addr().unwrap().to_string();
    assert!(
        error.starts_with(&format!("cannot listen on {addr}")),
        "{error}"
    );
}
