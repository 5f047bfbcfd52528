//! The life of a service process, the same for all six:
//!
//! 1. read settings and credentials (a missing one stops the start, named);
//! 2. wait for PostgreSQL (no READY while it is unreachable), migrate;
//! 3. create the producer, bind the listener (and the metrics listener,
//!    when `TEIPSUM_METRICS_LISTEN` names one), start relay and consumers;
//! 4. `READY=1`, then watchdog pings while the database answers, the relay
//!    and consumer threads live and the outbox drains (see [`Health`]);
//! 5. on SIGTERM/SIGINT: `STOPPING=1`, stop accepting, drain requests,
//!    stop consumers and relay, flush the producer.
//!
//! Tests use [`start`] to run the very same service in-process on port 0.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use rdkafka::producer::{FutureProducer, Producer};
use teipsum_conventions::credentials;
use tokio::sync::oneshot;
use warp::{Filter, Reply};

use crate::{
    db::Db,
    events::{self, Handler, Producers, Retention, Worker},
    http::{self, ApiError},
    jwt::Verifier,
    kafka,
    metrics::Metrics,
    process,
    settings::Settings,
};

/// What a service is, statically.
pub struct Service {
    /// Name as in the spec (`order`); the event `source`.
    pub name: &'static str,
    /// The service's own migrations (`refinery::embed_migrations!`).
    pub migrations: fn() -> refinery::Runner,
    /// Whether the service checks access tokens (needs `jwt-public-key`).
    pub verifies_tokens: bool,
    /// The service's routes as the OpenAPI document describes them: their
    /// path templates label the HTTP metrics (`http_route`).
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

/// What the routes and consumers of a service are built from.
#[derive(Clone)]
pub struct Context {
    /// The settings the process started with.
    pub settings: Settings,
    /// The service's database.
    pub db: Db,
    /// The idempotent producer (used by the relay; services append to the outbox).
    pub producer: FutureProducer,
    /// Access token verification, for services that check tokens.
    pub verifier: Option<Arc<Verifier>>,
    /// The service name.
    pub name: &'static str,
    /// The service's metrics, where it registers its own families.
    pub metrics: Metrics,
    /// Tables pruned with the consumer ledger (see [`Context::retain`]).
    retained: Arc<Mutex<Vec<(&'static str, &'static str)>>>,
    /// Tasks of the service, ended when it stops (see [`Context::spawn`]).
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Context {
    /// Have old rows of `table` removed once its timestamp `column` is older
    /// than the platform's retention (`TEIPSUM_RETENTION_SECS`), as the
    /// consumer ledger is. For tables such as idempotency keys.
    pub fn retain(&self, table: &'static str, column: &'static str) {
        self.retained
            .lock()
            .expect("not poisoned")
            .push((table, column));
    }

    /// Run `task` for as long as the service runs. When it stops, the task
    /// is ended before the pool closes: a task's clone of [`Db`] must not
    /// be the pool's last, whose drop closes its connections with a
    /// blocking call that panics on the runtime's threads.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks.lock().expect("not poisoned").push(handle);
    }

    /// What the relay prunes.
    fn retention(&self) -> Retention {
        let tables = self.retained.lock().expect("not poisoned").clone();
        tables
            .into_iter()
            .fold(Retention::new(self.settings.retention), |r, (t, c)| {
                r.table(t, c)
            })
    }

    /// The verifier; only call for services with `verifies_tokens`.
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone().expect("the service verifies tokens")
    }
}

/// A consumer to run: the topics and what to do with their events.
pub struct ConsumerSpec {
    /// Topics to subscribe to.
    pub topics: Vec<&'static str>,
    /// The handler.
    pub handler: Box<dyn Handler>,
}

impl Handler for Box<dyn Handler> {
    fn handle(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        topic: &str,
        event: &events::Envelope,
    ) -> Result<(), events::HandleError> {
        (**self).handle(tx, topic, event)
    }

    fn wants(&self, topic: &str, kind: &str) -> bool {
        (**self).wants(topic, kind)
    }

    fn understands(&self, topic: &str, kind: &str, version: u32) -> bool {
        (**self).understands(topic, kind, version)
    }

    fn begin_batch(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        events: &[(&str, &events::Envelope)],
    ) -> Result<(), events::HandleError> {
        (**self).begin_batch(tx, events)
    }

    fn end_batch(&mut self, tx: &mut postgres::Transaction<'_>) -> Result<(), events::HandleError> {
        (**self).end_batch(tx)
    }

    fn committed(&mut self) {
        (**self).committed()
    }

    fn rolled_back(&mut self) {
        (**self).rolled_back()
    }
}

/// The routes and consumers a service builds from its [`Context`].
pub struct Parts<F> {
    /// The service's routes (health routes are added by the kit).
    pub routes: F,
    /// Its consumers, at most one per service (one consumer group).
    pub consumer: Option<ConsumerSpec>,
}

/// A service running in this process.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it serves `/metrics`, when it was asked to.
    pub metrics_addr: Option<SocketAddr>,
    /// Its context (tests use the database through it).
    pub context: Context,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
    workers: Vec<Worker>,
}

impl Running {
    /// Stop accepting, drain requests, stop the workers, flush the producer.
    pub async fn stop(mut self) {
        // (`self` is taken apart below; Drop is not implemented on purpose.)
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(25), &mut self.server).await;
        if let Some(metrics_server) = self.metrics_server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), metrics_server).await;
        }
        let tasks = std::mem::take(&mut *self.context.tasks.lock().expect("not poisoned"));
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        let workers = std::mem::take(&mut self.workers);
        let context = self.context;
        // Blocking: workers join, the producer flushes, and pooled
        // connections close synchronously when the pool drops.
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                worker.stop();
            }
            let _ = context.producer.flush(Duration::from_secs(5));
            drop(context);
        })
        .await;
    }

    /// Whether a background worker died (the service should be restarted).
    pub fn workers_alive(&self) -> bool {
        self.workers.iter().all(|w| !w.is_finished())
    }

    /// Whether the service is fit to run: what the watchdog pings on.
    pub async fn health(&self) -> Health {
        let db = self.context.db.clone();
        let checked = db
            .run(|conn| {
                conn.simple_query("SELECT 1")?;
                let lag = events::outbox_lag(&mut **conn)?;
                let parked = events::parked_count(&mut **conn)?;
                Ok::<_, crate::db::DbError>((lag, parked))
            })
            .await;
        let (database, outbox_lag, parked_events) = match checked {
            Ok((lag, parked)) => (Ok(()), lag, Some(parked)),
            Err(e) => (Err(crate::db::describe(&e)), None, None),
        };
        Health {
            database,
            workers_alive: self.workers_alive(),
            outbox_lag,
            outbox_max_lag: self.context.settings.outbox_max_lag,
            parked_events,
        }
    }
}

/// What the watchdog decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Whether the database answered (or why not).
    pub database: Result<(), String>,
    /// Whether the relay and the consumer threads all live.
    pub workers_alive: bool,
    /// How long the oldest unsent outbox event has waited, if any.
    pub outbox_lag: Option<Duration>,
    /// How long it may wait (`TEIPSUM_OUTBOX_MAX_LAG_SECS`).
    pub outbox_max_lag: Duration,
    /// Parked messages, when the database answered. They do not make the
    /// service unhealthy: the rest of the events flow; they are reported.
    pub parked_events: Option<i64>,
}

impl Health {
    /// `None` when the service is healthy, else why not (then no watchdog
    /// ping: systemd restarts the unit once `WatchdogSec` passes).
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = &self.database {
            return Some(format!("the database does not answer: {e}"));
        }
        if !self.workers_alive {
            return Some("a relay or consumer thread has died".to_owned());
        }
        match self.outbox_lag {
            Some(lag) if lag > self.outbox_max_lag => Some(format!(
                "the oldest unsent event has waited {}s in the outbox (at most {}s)",
                lag.as_secs(),
                self.outbox_max_lag.as_secs()
            )),
            _ => None,
        }
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Settings or credentials.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The database.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// Kafka client creation.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The token key.
    #[error(transparent)]
    Jwt(#[from] crate::jwt::JwtError),
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The service's own setup.
    #[error(transparent)]
    Build(#[from] anyhow::Error),
}

/// Start `service` with `settings`: wait for the database, migrate, serve.
/// Returns once the service is ready.
pub async fn start<F, B>(
    service: &Service,
    settings: Settings,
    build: B,
) -> Result<Running, StartError>
where
    B: FnOnce(&Context) -> anyhow::Result<Parts<F>>,
    F: Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let verifier = if service.verifies_tokens {
        let pem = settings.credential(credentials::JWT_PUBLIC_KEY)?;
        Some(Arc::new(Verifier::new(
            &pem,
            &settings.jwt_issuer,
            &settings.jwt_audience,
        )?))
    } else {
        None
    };
    let ca = match &settings.database_ca_credential {
        Some(name) => settings.optional_credential(name)?,
        None => None,
    };
    let templates = (service.openapi)();
    let metrics = Metrics::new(
        service.name,
        templates.paths.paths.keys().map(String::as_str),
    );
    let db = Db::new(&settings.database, 16, ca.as_deref())?.observed(metrics.pool_wait());
    let started = start_with(service, settings, build, verifier, db.clone(), metrics).await;
    if started.is_err() {
        // The last handle closes the pooled connections with a blocking
        // call, which would panic on the runtime's thread and hide the error.
        let _ = tokio::task::spawn_blocking(move || drop(db)).await;
    }
    started
}

/// [`start`] once the pool exists.
async fn start_with<F, B>(
    service: &Service,
    settings: Settings,
    build: B,
    verifier: Option<Arc<Verifier>>,
    db: Db,
    metrics: Metrics,
) -> Result<Running, StartError>
where
    B: FnOnce(&Context) -> anyhow::Result<Parts<F>>,
    F: Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    process::status("waiting for PostgreSQL");
    let mut delay = Duration::from_millis(200);
    loop {
        match db.check().await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL is not reachable yet");
                process::status(&format!("waiting for PostgreSQL: {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    process::status("applying migrations");
    db.migrate(service.name, (service.migrations)()).await?;

    let client_id = settings.kafka_client_id.clone();
    let producer = kafka::producer(&settings.kafka_brokers, &client_id)?;
    let context = Context {
        settings: settings.clone(),
        db: db.clone(),
        producer: producer.clone(),
        verifier,
        name: service.name,
        metrics: metrics.clone(),
        retained: Arc::default(),
        tasks: Arc::default(),
    };
    metrics.watch_pool(&db);
    metrics.watch_events(&db);
    metrics.watch_tables(&db);
    let parts = build(&context)?;

    let (listener, addr) = bind(settings.listen).await?;
    let metrics_listener = match settings.metrics_listen {
        Some(at) => Some(bind(at).await?),
        None => None,
    };

    let producers = Producers::new(settings.topic_producers.clone());
    if let Some(consumer) = &parts.consumer {
        // Without the spec's producers every event would be parked.
        let missing = producers.missing(&consumer.topics);
        if !missing.is_empty() {
            return Err(StartError::Build(anyhow::anyhow!(
                "{} names no producer of {} (the spec's producers of each consumed topic)",
                teipsum_conventions::env::TOPIC_PRODUCERS,
                missing.join(", ")
            )));
        }
    }
    let mut workers = vec![events::spawn_relay(
        db.clone(),
        producer.clone(),
        service.name,
        context.retention(),
        metrics.relay(),
    )];
    if let Some(consumer) = parts.consumer {
        let group =
            settings
                .kafka_group
                .clone()
                .ok_or(crate::settings::SettingsError::Missing {
                    name: teipsum_conventions::env::KAFKA_GROUP,
                    what: "the consumer group of a service that consumes, as the plan names it",
                })?;
        let member = kafka::replica_member_id(&client_id, addr.port());
        let kafka_consumer = kafka::observed_consumer(
            &settings.kafka_brokers,
            &group,
            &client_id,
            &member,
            metrics.consumer(&consumer.topics, &settings.kafka_brokers, &group)?,
        )?;
        workers.push(events::spawn_consumer(
            db.clone(),
            kafka_consumer,
            service.name,
            &consumer.topics,
            producers,
            consumer.handler,
            settings.consumer_batch,
        )?);
    }

    let routes = health_routes(db.clone(), producer.clone())
        .or(parts.routes)
        .recover(http::handle_rejection);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    // Requests are measured only when someone can read the measurements.
    let observed = metrics_listener.as_ref().map(|_| metrics.http());
    let (metrics_tx, metrics_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        http::serve_observed(listener, routes, observed, async move {
            let _ = shutdown_rx.await;
        })
        .await;
        // The metrics listener outlives the drain of the public one, so that
        // a scrape during the drain still answers.
        let _ = metrics_tx.send(true);
    });
    let (metrics_addr, metrics_server) = match metrics_listener {
        Some((listener, at)) => {
            let mut stopped = metrics_rx;
            let serving = tokio::spawn(http::serve(
                listener,
                metrics_routes(metrics).recover(http::handle_rejection),
                async move {
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                },
            ));
            (Some(at), Some(serving))
        }
        None => (None, None),
    };
    Ok(Running {
        addr,
        metrics_addr,
        context,
        shutdown: Some(shutdown_tx),
        server,
        metrics_server,
        workers,
    })
}

/// A listener on `at`, and the address it got (`at` may ask for port 0).
async fn bind(at: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let failed = |source| StartError::Listen { addr: at, source };
    let listener = tokio::net::TcpListener::bind(at).await.map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    Ok((listener, addr))
}

/// `GET /metrics` and nothing else: the metrics listener's only route.
fn metrics_routes(
    metrics: Metrics,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .then(move |accept: Option<String>| {
            let metrics = metrics.clone();
            async move {
                let format = crate::metrics::Format::accepted(accept.as_deref());
                let mut response = metrics.scrape(format).await.into_response();
                response.headers_mut().insert(
                    warp::http::header::CONTENT_TYPE,
                    warp::http::HeaderValue::from_static(format.content_type()),
                );
                response
            }
        })
}

/// `/healthz` (the process answers) and `/readyz` (database and broker answer).
fn health_routes(
    db: Db,
    producer: FutureProducer,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let healthz = warp::path!("healthz").and(warp::get()).map(|| {
        http::json_reply(
            warp::http::StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )
    });
    let readyz = warp::path!("readyz").and(warp::get()).then(move || {
        let db = db.clone();
        let producer = producer.clone();
        async move {
            let checked = db
                .run(|conn| Ok::<_, crate::db::DbError>(events::parked_count(&mut **conn)?))
                .await;
            let (database, parked) = match checked {
                Ok(parked) => (Ok(()), Some(parked)),
                Err(e) => (Err(crate::db::describe(&e)), None),
            };
            let broker = broker_reachable(&producer).await;
            let ok = database.is_ok() && broker.is_ok();
            let word = |r: &Result<(), String>| match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.clone(),
            };
            http::json_reply(
                if ok {
                    warp::http::StatusCode::OK
                } else {
                    warp::http::StatusCode::SERVICE_UNAVAILABLE
                },
                &serde_json::json!({
                    "status": if ok { "ready" } else { "not ready" },
                    "database": word(&database),
                    "broker": word(&broker),
                    // Parked events do not make the service unready (the
                    // others flow); `events replay` re-applies them.
                    "parked_events": parked,
                }),
            )
        }
    });
    healthz.or(readyz).unify()
}

/// Whether the broker answers a metadata request within two seconds.
pub async fn broker_reachable(producer: &FutureProducer) -> Result<(), String> {
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|_| Err("the metadata task failed".to_owned()))
}

/// Run `service` as a process: settings from the environment, logging,
/// sd_notify, the watchdog, signals. Returns the process exit code.
pub async fn run<F, B>(service: Service, build: B) -> ExitCode
where
    B: FnOnce(&Context) -> anyhow::Result<Parts<F>>,
    F: Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            crate::telemetry::init("info");
            tracing::error!(error = %e, "cannot start: bad settings");
            eprintln!("teipsum-{}: {e}", service.name);
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    crate::telemetry::init(&settings.log);
    let listen = settings.listen;
    let running = tokio::select! {
        started = start(&service, settings, build) => match started {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot start");
                eprintln!("teipsum-{}: cannot start: {e}", service.name);
                return ExitCode::FAILURE;
            }
        },
        () = process::shutdown_signal() => {
            process::stopping("stopped before it was ready");
            return ExitCode::SUCCESS;
        }
    };
    let serving = match running.metrics_addr {
        Some(metrics) => format!("serving on {}, metrics on {metrics}", running.addr),
        None => format!("serving on {}", running.addr),
    };
    tracing::info!(%listen, metrics = ?running.metrics_addr, "ready");
    process::ready(&serving);

    // The watchdog: a ping per half interval while healthy. Without a
    // watchdog the same checks still run, to log the parked count.
    let interval = process::watchdog_interval();
    let mut healthy = true;
    let mut parked: Option<i64> = None;
    let shutdown = process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(interval.unwrap_or(Duration::from_secs(15))) => {}
        }
        let deadline = interval.map_or(Duration::from_secs(10), |i| i / 2);
        let health = match tokio::time::timeout(deadline, running.health()).await {
            Ok(health) => health,
            Err(_) => Health {
                database: Err("no answer".to_owned()),
                workers_alive: running.workers_alive(),
                outbox_lag: None,
                outbox_max_lag: running.context.settings.outbox_max_lag,
                parked_events: None,
            },
        };
        if let Some(now) = health.parked_events
            && parked != Some(now)
        {
            if now > 0 || parked.is_some() {
                tracing::warn!(parked_events = now, "parked events changed");
            }
            parked = Some(now);
        }
        match health.problem() {
            None => {
                if !healthy {
                    tracing::info!("healthy again");
                    process::status(&serving);
                    healthy = true;
                }
                if interval.is_some() {
                    process::watchdog();
                }
            }
            Some(why) => {
                // No ping: if this lasts, systemd restarts the service.
                tracing::warn!(%why, "unhealthy; no watchdog ping");
                process::status(&format!("unhealthy: {why}"));
                healthy = false;
            }
        }
    }
    process::stopping("draining requests");
    running.stop().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Map a database error of a request to a 503 (unreachable) or 500.
pub fn db_rejection(error: crate::db::DbError) -> warp::Rejection {
    let error = anyhow::Error::new(error);
    match error.downcast_ref::<crate::db::DbError>() {
        Some(crate::db::DbError::Unavailable(_)) => ApiError::unavailable(&error).reject(),
        _ => ApiError::internal(&error).reject(),
    }
}

/// Usage of [`events_command`], for a service's own usage text.
pub const EVENTS_USAGE: &str = "\
events parked                  list the events the consumer parked
events replay --id <id|uuid>   re-apply one (by row id or event id) and unpark it
events replay --all            re-apply every parked event";

/// What a service's command line offers besides running it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commands {
    /// `events parked` / `events replay`, for a service that consumes.
    pub consumer: Option<fn() -> ConsumerSpec>,
    /// `events announce`, for a service whose state a read model holds.
    pub announce: Option<Announce>,
}

/// A service's `main`: `teipsum-<name>` runs it (settings from the
/// environment); `teipsum-<name> events ...` runs the operator's commands
/// that `commands` offers ([`events_command`], [`announce_command`]).
pub async fn main<F, B>(service: Service, build: B, commands: Commands) -> ExitCode
where
    B: FnOnce(&Context) -> anyhow::Result<Parts<F>>,
    F: Filter<Error = warp::Rejection> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.as_slice(), commands) {
        ([], _) => run(service, build).await,
        (
            [events, announce],
            Commands {
                announce: Some(entities),
                ..
            },
        ) if events == "events" && announce == "announce" => {
            announce_command(&service, entities).await
        }
        (
            [events, rest @ ..],
            Commands {
                consumer: Some(consumer),
                ..
            },
        ) if events == "events" => events_command(&service, consumer(), rest).await,
        _ => {
            let program = format!("teipsum-{}", service.name);
            eprintln!("usage: {program}    run the service (settings from the environment)");
            let usage = [
                commands.consumer.map(|_| EVENTS_USAGE),
                commands.announce.map(|_| ANNOUNCE_USAGE),
            ];
            for line in usage.iter().flatten().flat_map(|u| u.lines()) {
                eprintln!("       {program} {line}");
            }
            ExitCode::from(2)
        }
    }
}

/// `teipsum-<service> events parked|replay ...`, run by an operator on the
/// host as the service's user, with the unit's `TEIPSUM_DATABASE` (and
/// `TEIPSUM_TOPIC_PRODUCERS`, to check sources again). A replayed event goes
/// through `consumer`'s handler inside one transaction with its ledger row
/// and the removal of its parked row, so it takes effect once at most.
pub async fn events_command(
    service: &Service,
    consumer: ConsumerSpec,
    args: &[String],
) -> ExitCode {
    let which = match args {
        [parked] if parked == "parked" => None,
        [replay, all] if replay == "replay" && all == "--all" => Some(events::Replay::All),
        [replay, flag, id] if replay == "replay" && flag == "--id" => {
            match (id.parse::<i64>(), id.parse::<uuid::Uuid>()) {
                (Ok(row), _) => Some(events::Replay::Row(row)),
                (_, Ok(event)) => Some(events::Replay::Event(event)),
                _ => {
                    eprintln!("error: `{id}` is neither a parked row id nor an event id");
                    return ExitCode::from(2);
                }
            }
        }
        _ => {
            for (i, line) in EVENTS_USAGE.lines().enumerate() {
                let lead = if i == 0 { "usage:" } else { "      " };
                eprintln!("{lead} teipsum-{} {line}", service.name);
            }
            return ExitCode::from(2);
        }
    };
    let settings = match command_settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings.log);
    let (db, producers) = settings.parts;
    let name = service.name;
    let result = tokio::task::spawn_blocking(move || {
        let outcome = run_events_command(&db, name, which, producers.as_ref(), consumer);
        // The pool closes its connections synchronously.
        drop(db);
        outcome
    })
    .await;
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {}", crate::db::describe(&e));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// Usage of [`announce_command`], for a producing service's usage text.
pub const ANNOUNCE_USAGE: &str = "events announce                queue one current-state event per entity, to rebuild read models";

/// What `events announce` runs: append one event per entity, as it is now,
/// to the outbox in `tx`; returns how many it appended.
pub type Announce = fn(&mut postgres::Transaction<'_>) -> Result<u64, postgres::Error>;

/// `teipsum-<service> events announce`, run by an operator (as the service's
/// user, with the unit's `TEIPSUM_DATABASE`) when a consumer must rebuild its
/// read model after the topic's retention dropped the history: `announce`
/// appends the current state of every entity to the outbox in one
/// transaction, and the running service's relay publishes it. Consumers
/// treat these events as upserts, so announcing twice does no harm.
pub async fn announce_command(service: &Service, announce: Announce) -> ExitCode {
    let settings = match command_settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings.log);
    let (db, _) = settings.parts;
    let name = service.name;
    let result = tokio::task::spawn_blocking(move || {
        let outcome = (|| -> Result<u64, crate::db::DbError> {
            let mut conn = db.get()?;
            let mut tx = conn.transaction()?;
            let queued = announce(&mut tx)?;
            tx.commit()?;
            Ok(queued)
        })();
        drop(db);
        outcome
    })
    .await;
    match result {
        Ok(Ok(queued)) => {
            println!("{name}: queued {queued} events in the outbox");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {}", crate::db::describe(&e));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

struct CommandSettings {
    parts: (Db, Option<Producers>),
    log: String,
}

fn command_settings() -> Result<CommandSettings, String> {
    use teipsum_conventions::env;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let conninfo = var(env::DATABASE).ok_or_else(|| {
        format!(
            "set {} to the service database's connection string (as in its unit)",
            env::DATABASE
        )
    })?;
    let ca = var(env::SYSTEMD_CREDENTIALS_DIRECTORY)
        .or_else(|| var(env::CREDENTIALS_DIR))
        .zip(var(env::DATABASE_CA_CREDENTIAL))
        .map(|(dir, name)| std::path::PathBuf::from(dir).join(name))
        .filter(|path| path.exists())
        .map(|path| std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?;
    let db = Db::new(&conninfo, 1, ca.as_deref()).map_err(|e| e.to_string())?;
    let producers = var(env::TOPIC_PRODUCERS)
        .map(|text| {
            teipsum_conventions::parse_producers(&text)
                .map(|pairs| {
                    Producers::new(
                        pairs
                            .into_iter()
                            .map(|(t, p)| (t, p.into_iter().collect()))
                            .collect(),
                    )
                })
                .map_err(|e| format!("{}: {e}", env::TOPIC_PRODUCERS))
        })
        .transpose()?;
    Ok(CommandSettings {
        parts: (db, producers),
        log: var(env::LOG).unwrap_or_else(|| "warn".to_owned()),
    })
}

fn run_events_command(
    db: &Db,
    name: &str,
    which: Option<events::Replay>,
    producers: Option<&Producers>,
    consumer: ConsumerSpec,
) -> Result<ExitCode, crate::db::DbError> {
    let Some(which) = which else {
        let parked = events::list_parked(&mut *db.get()?, name)?;
        if parked.is_empty() {
            println!("no parked events");
        }
        for p in parked {
            println!(
                "{}\t{}\t{}[{}]@{}\t{}\tfrom {}\t{}\t{}",
                p.id,
                p.event_id.map_or("-".to_owned(), |id| id.to_string()),
                p.topic,
                p.partition,
                p.offset,
                p.kind.as_deref().unwrap_or("-"),
                p.source.as_deref().unwrap_or("-"),
                p.parked_at,
                p.error
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut handler = consumer.handler;
    let outcomes = events::replay(db, name, which, producers, &mut handler)?;
    if outcomes.is_empty() {
        println!("nothing to replay");
        return Ok(if which == events::Replay::All {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut failed = false;
    for (id, outcome) in outcomes {
        match outcome {
            events::Replayed::Applied => println!("{id}\tapplied"),
            events::Replayed::Skipped => {
                println!("{id}\talready applied or not for this service; unparked")
            }
            events::Replayed::Failed(error) => {
                failed = true;
                println!("{id}\tstill failing, kept: {error}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Health {
        Health {
            database: Ok(()),
            workers_alive: true,
            outbox_lag: Some(Duration::from_secs(3)),
            outbox_max_lag: Duration::from_secs(300),
            parked_events: Some(0),
        }
    }

    #[test]
    fn the_watchdog_pings_only_while_database_workers_and_outbox_are_well() {
        assert_eq!(healthy().problem(), None);
        let empty_outbox = Health {
            outbox_lag: None,
            ..healthy()
        };
        assert_eq!(empty_outbox.problem(), None);
        let parked = Health {
            parked_events: Some(12),
            ..healthy()
        };
        assert_eq!(
            parked.problem(),
            None,
            "parked events are reported, not fatal"
        );
        let no_db = Health {
            database: Err("connection refused".to_owned()),
            ..healthy()
        };
        assert!(no_db.problem().unwrap().contains("connection refused"));
        let dead = Health {
            workers_alive: false,
            ..healthy()
        };
        assert!(dead.problem().unwrap().contains("thread has died"));
        let stuck = Health {
            outbox_lag: Some(Duration::from_secs(301)),
            ..healthy()
        };
        assert!(
            stuck.problem().unwrap().contains("301s"),
            "{:?}",
            stuck.problem()
        );
        let at_the_bound = Health {
            outbox_lag: Some(Duration::from_secs(300)),
            ..healthy()
        };
        assert_eq!(at_the_bound.problem(), None);
    }
}
