//! Why a piece of test infrastructure could not be set up.
//!
//! Messages name what failed; the operating system's or library's own error
//! is the [`source`](std::error::Error::source), not repeated in the message,
//! so a caller printing the chain (`teipsum dev`) prints each cause once.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

/// What went wrong, one variant per cause, each naming the program, path
/// or service involved. Tests turn it into a failure with `.expect("...")`;
/// `teipsum dev` reports it and exits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No directory with PostgreSQL's `initdb` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries not found (initdb, postgres): install postgresql-15 (scripts/setup.sh) or set {var} to their directory",
        var = crate::PG_BIN_VAR
    )]
    PostgresMissing,
    /// `$TEIPSUM_PG_BIN` names a directory without `initdb`.
    #[error("{var}={} has no initdb", dir.display(), var = crate::PG_BIN_VAR)]
    PostgresBinDirInvalid {
        /// The directory the variable names.
        dir: PathBuf,
    },
    /// A file or directory operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done (`creating`, `writing`, `changing the owner of`).
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started at all.
    #[error(
        "{} does not start{}",
        program.display(),
        hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Spawn {
        /// The executable.
        program: PathBuf,
        /// How to install it, when it is one the tests need.
        hint: Option<&'static str>,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// `initdb` ran and failed.
    #[error("initdb {} failed ({status}): {stderr}", data.display())]
    Initdb {
        /// The data directory.
        data: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// The server did not accept connections in time.
    #[error("PostgreSQL (socket in {}) did not accept connections within {waited:?}", socket_dir.display())]
    PostgresNotReady {
        /// Where its socket should be.
        socket_dir: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// `psql` ran and refused the SQL.
    #[error("psql in database {database}: {message} (SQL: {sql})")]
    Psql {
        /// The database.
        database: String,
        /// The statement.
        sql: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// A role created for a database cannot log in after `pg_ident.conf` was reloaded.
    #[error("role {role} cannot log in through peer authentication after {waited:?}")]
    RoleCannotLogIn {
        /// The role.
        role: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The user PostgreSQL runs as (when the tests run as root) is unknown.
    #[error("there is no system user {name} (/etc/passwd) for PostgreSQL to run as")]
    UnknownUser {
        /// The user name.
        name: String,
    },
    /// The name of the user running the tests could not be found.
    #[error("the user with uid {uid} has no name in /etc/passwd and $USER is unset")]
    NoUserName {
        /// Our uid.
        uid: u32,
    },
    /// No free TCP port could be had from the kernel.
    #[error("no free port on 127.0.0.1")]
    NoFreePort(#[source] std::io::Error),
    /// The broker did not listen in time.
    #[error("tansu did not listen on {bootstrap} within {waited:?}: {log}")]
    TansuNotListening {
        /// Its address.
        bootstrap: String,
        /// How long we waited.
        waited: Duration,
        /// Its log so far.
        log: String,
    },
    /// The Kafka admin client could not be made or did not answer.
    #[error("Kafka admin client for {bootstrap}")]
    Kafka {
        /// The broker.
        bootstrap: String,
        /// librdkafka's error (boxed: it is large, and errors travel in every `Result`).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The broker refused to create a topic.
    #[error("topic {topic}: {code}")]
    TopicNotCreated {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: rdkafka::types::RDKafkaErrorCode,
    },
    /// A helper thread (a runtime of its own) panicked.
    #[error("the thread that {what} panicked")]
    ThreadPanicked {
        /// What it was doing.
        what: &'static str,
    },
    /// A helper thread could not build its runtime.
    #[error("the runtime of the thread that {what}")]
    Runtime {
        /// What the thread was to do.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A workspace binary the test needs has not been built.
    #[error("{} is not built; run `cargo build --workspace` (scripts/test.sh does)", path.display())]
    NotBuilt {
        /// Where it should be.
        path: PathBuf,
    },
    /// The running test's own path could not be read.
    #[error("the test binary's path")]
    CurrentExe(#[source] std::io::Error),
    /// A service's environment has no usable `TEIPSUM_LISTEN`.
    #[error("service {service}: TEIPSUM_LISTEN is {listen:?}, not address:port")]
    NoListenPort {
        /// The service.
        service: String,
        /// What the variable says, if set.
        listen: Option<String>,
    },
    /// `launch` was called on a service that runs.
    #[error("service {service} is already running")]
    AlreadyRunning {
        /// The service.
        service: String,
    },
    /// The service exited while we waited for it to become ready.
    #[error("service {service} exited during start: {status}")]
    ExitedDuringStart {
        /// The service.
        service: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The service did not answer `/readyz` with 200 in time.
    #[error("service {service} did not become ready in {timeout:?}")]
    NotReady {
        /// The service.
        service: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The HTTP client could not be built.
    #[error("the tests' HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// What the testkit's functions return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Io`] maker for `map_err`.
pub(crate) fn io(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { what, path, source }
}
