//! PostgreSQL: a pool of blocking connections used from async code.
//!
//! Connections come from an r2d2 pool; every query runs on tokio's blocking
//! threads ([`Db::run`]) with the caller's tracing span. On one host the
//! service reaches PostgreSQL over its Unix socket with peer authentication;
//! a remote database is reached over TLS (rustls), verified against the
//! `postgres-ca` credential when there is one, else the web PKI roots.

use std::{sync::Arc, time::Duration};

use postgres::{Client, Config};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

/// Database failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time.
    #[error("the database is unreachable: {0}")]
    Unavailable(#[from] r2d2::Error),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] postgres::Error),
    /// The blocking task died.
    #[error("a database task panicked or was cancelled")]
    Join,
    /// Migrations failed.
    #[error("migrations failed: {0}")]
    Migrations(String),
    /// The connection string or TLS settings are wrong.
    #[error("database configuration: {0}")]
    Config(String),
}

/// A pool of connections to the service's database.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>,
    config: Arc<Config>,
    /// The pool's TLS settings (the `postgres-ca` roots), for connections
    /// outside the pool too.
    tls: MakeRustlsConnect,
    /// Where the time to get a pooled connection goes, when measured.
    wait: Option<prometheus_client::metrics::histogram::Histogram>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("state", &self.pool.state())
            .finish()
    }
}

/// The TLS connector: a CA from `ca_pem` if given, else the web PKI roots.
pub fn tls(ca_pem: Option<&[u8]>) -> Result<MakeRustlsConnect, DbError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| DbError::Config(format!("postgres-ca: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| DbError::Config(format!("postgres-ca: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl Db {
    /// A pool for `conninfo` (libpq key/value or URL syntax). Connections are
    /// opened lazily; [`Db::check`] tells whether the database answers.
    pub fn new(conninfo: &str, max_size: u32, ca_pem: Option<&[u8]>) -> Result<Self, DbError> {
        let mut config: Config = conninfo
            .parse()
            .map_err(|e: postgres::Error| DbError::Config(e.to_string()))?;
        config.connect_timeout(Duration::from_secs(5));
        let tls = tls(ca_pem)?;
        let manager = PostgresConnectionManager::new(config.clone(), tls.clone());
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Db {
            pool,
            config: Arc::new(config),
            tls,
            wait: None,
        })
    }

    /// This pool, observing in `wait` how long each checkout waits for a
    /// connection (`db_client_connection_wait_time_seconds`).
    pub fn observed(mut self, wait: prometheus_client::metrics::histogram::Histogram) -> Self {
        self.wait = Some(wait);
        self
    }

    /// The pool's connections now, and the most it opens.
    pub fn pool_state(&self) -> (r2d2::State, u32) {
        (self.pool.state(), self.pool.max_size())
    }

    /// A connection from the pool, its wait measured.
    fn checkout(
        pool: &r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>,
        wait: Option<&prometheus_client::metrics::histogram::Histogram>,
    ) -> Result<Conn, DbError> {
        let started = std::time::Instant::now();
        let conn = pool.get();
        if let Some(wait) = wait {
            wait.observe(started.elapsed().as_secs_f64());
        }
        Ok(conn?)
    }

    /// A connection outside the pool (for LISTEN, advisory locks held for a
    /// long time, and tests), with the pool's TLS settings.
    pub fn dedicated(&self) -> Result<Client, DbError> {
        Ok(self.config.connect(self.tls.clone())?)
    }

    /// Run `f` with a pooled connection on a blocking thread, inside the
    /// caller's span.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let wait = self.wait.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = Self::checkout(&pool, wait.as_ref())?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(DbError::Join))?
    }

    /// A connection for blocking code (the relay and consumer threads).
    pub fn get(&self) -> Result<Conn, DbError> {
        Self::checkout(&self.pool, self.wait.as_ref())
    }

    /// Whether the database answers `SELECT 1`.
    pub async fn check(&self) -> Result<(), DbError> {
        self.run(|conn| {
            conn.simple_query("SELECT 1")?;
            Ok::<_, DbError>(())
        })
        .await
    }

    /// Apply the kit's migrations, then the service's, holding an advisory
    /// lock so that replicas starting together migrate once.
    pub async fn migrate(&self, service: &str, runner: refinery::Runner) -> Result<(), DbError> {
        let db = self.clone();
        let lock_key = advisory_key(&format!("teipsum migrations {service}"));
        tokio::task::spawn_blocking(move || {
            let mut client = db.dedicated()?;
            client.execute("SELECT pg_advisory_lock($1)", &[&lock_key])?;
            let result = (|| {
                kit_migrations::migrations::runner()
                    .set_migration_table_name("kit_schema_history")
                    .run(&mut client)
                    .map_err(|e| DbError::Migrations(format!("kit: {e}")))?;
                runner
                    .run(&mut client)
                    .map_err(|e| DbError::Migrations(e.to_string()))?;
                Ok::<_, DbError>(())
            })();
            // The lock is released with the session anyway; say so explicitly.
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&lock_key]);
            result
        })
        .await
        .map_err(|_| DbError::Join)?
    }
}

/// `error` and its causes, one after the other; a PostgreSQL error among them
/// with its severity, SQLSTATE, message, detail and hint (its `Display` is
/// `db error` and nothing else), so that a log line tells a refused
/// connection from a full disk.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = describe_link(e);
        // Transparent wrappers repeat their inner error's text.
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// One link of a cause chain, PostgreSQL's own errors in full.
pub fn describe_link(error: &(dyn std::error::Error + 'static)) -> String {
    let Some(db) = error.downcast_ref::<postgres::error::DbError>() else {
        return error.to_string();
    };
    let mut text = format!("{} {} {}", db.severity(), db.code().code(), db.message());
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" (detail: {detail})"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}

/// A stable 64-bit key for `pg_advisory_lock` from a name.
pub fn advisory_key(name: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// The tables the kit itself needs in every service database: the outbox,
/// the processed-events ledger and parked (poison) messages.
mod kit_migrations {
    refinery::embed_migrations!("migrations");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        assert_eq!(advisory_key("a"), advisory_key("a"));
        assert_ne!(
            advisory_key("teipsum migrations order"),
            advisory_key("teipsum migrations user")
        );
        // Pinned: replicas of different builds must agree on the key.
        assert_eq!(advisory_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
    }
}
