//! The life of a service process, the same for all six:
//!
//! 1. read settings and credentials (a missing one stops the start, named);
//! 2. wait for PostgreSQL (no READY while it is unreachable), migrate;
//! 3. create the producer, bind the listener, start relay and consumers;
//! 4. `READY=1`, then watchdog pings while the database answers;
//! 5. on SIGTERM/SIGINT: `STOPPING=1`, stop accepting, drain requests,
//!    stop consumers and relay, flush the producer.
//!
//! Tests use [`start`] to run the very same service in-process on port 0.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use rdkafka::producer::{FutureProducer, Producer};
use teipsum_conventions::credentials;
use tokio::sync::oneshot;
use warp::{Filter, Reply};

use crate::{
    db::Db,
    events::{self, Handler, Worker},
    http::{self, ApiError},
    jwt::Verifier,
    kafka, process,
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
}

impl Context {
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
    /// Its context (tests use the database through it).
    pub context: Context,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
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
    let ca = settings.optional_credential("postgres-ca")?;
    let db = Db::new(&settings.database, 16, ca.as_deref())?;

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

    let client_id = format!("teipsum-{}", service.name);
    let producer = kafka::producer(&settings.kafka_brokers, &client_id)?;
    let context = Context {
        settings: settings.clone(),
        db: db.clone(),
        producer: producer.clone(),
        verifier,
        name: service.name,
    };
    let parts = build(&context)?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: settings.listen,
        source,
    })?;

    let mut workers = vec![events::spawn_relay(
        db.clone(),
        producer.clone(),
        service.name,
    )];
    if let Some(consumer) = parts.consumer {
        let group = settings
            .kafka_group
            .clone()
            .unwrap_or_else(|| teipsum_conventions::consumer_group("teipsum", service.name));
        let kafka_consumer = kafka::consumer(&settings.kafka_brokers, &group, &client_id)?;
        workers.push(events::spawn_consumer(
            db.clone(),
            kafka_consumer,
            service.name,
            &consumer.topics,
            consumer.handler,
        )?);
    }

    let routes = health_routes(db.clone(), producer.clone())
        .or(parts.routes)
        .recover(http::handle_rejection);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, routes, async move {
        let _ = shutdown_rx.await;
    }));
    Ok(Running {
        addr,
        context,
        shutdown: Some(shutdown_tx),
        server,
        workers,
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
            let database = db.check().await.map_err(|e| e.to_string());
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
    let serving = format!("serving on {}", running.addr);
    tracing::info!(%listen, "ready");
    process::ready(&serving);

    let watchdog = process::watchdog_interval().map(|interval| {
        let db = running.context.db.clone();
        tokio::spawn(async move {
            let mut healthy = true;
            loop {
                tokio::time::sleep(interval).await;
                match tokio::time::timeout(interval / 2, db.check()).await {
                    Ok(Ok(())) => {
                        if !healthy {
                            process::status(&serving);
                            healthy = true;
                        }
                        process::watchdog();
                    }
                    other => {
                        // No ping: if this lasts, systemd restarts the service.
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "no answer".to_owned(),
                        };
                        tracing::warn!(%why, "unhealthy: the database does not answer; no watchdog ping");
                        process::status(&format!("unhealthy: database: {why}"));
                        healthy = false;
                    }
                }
            }
        })
    });

    process::shutdown_signal().await;
    process::stopping("draining requests");
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
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
