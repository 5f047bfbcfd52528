//! What every TeIpsum service shares, written once.
//!
//! | module | what |
//! |---|---|
//! | [`settings`] | environment variables and credential files |
//! | [`db`] | the PostgreSQL pool, blocking work off the runtime, migrations |
//! | [`events`] | the envelope, transactional outbox + relay, idempotent consumer |
//! | [`kafka`] | librdkafka clients and `topics apply` |
//! | [`jwt`] | EdDSA access tokens |
//! | [`http`] | JSON bodies, errors, authentication, request ids, serving |
//! | [`domain`] | what requests share: [`domain::Invalid`], categories, prices, cursors, path ids |
//! | [`metrics`] | what `/metrics` exposes, on a listener of its own |
//! | [`process`] | sd_notify and signals |
//! | [`telemetry`] | journald or stderr logging |
//! | [`service`] | the life of a service process |
//!
//! `settings`, `db`, `events`, `http`, `metrics` and `service` are the service runtime,
//! behind the `service` feature (on by default). Without it the crate is what
//! the `teipsum` CLI needs on a host: `kafka` (topic admin), `jwt` (keys),
//! `process` (signals) and `telemetry`, without warp or PostgreSQL.

#[cfg(feature = "service")]
pub mod db;
#[cfg(feature = "service")]
pub mod domain;
#[cfg(feature = "service")]
pub mod events;
#[cfg(feature = "service")]
pub mod http;
pub mod jwt;
pub mod kafka;
#[cfg(feature = "service")]
pub mod metrics;
pub mod process;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod settings;
pub mod telemetry;

#[cfg(feature = "service")]
pub use service::{ConsumerSpec, Context, Parts, Running, Service};
