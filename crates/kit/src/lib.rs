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
//! | [`process`] | sd_notify and signals |
//! | [`telemetry`] | journald or stderr logging |
//! | [`service`] | the life of a service process |

pub mod db;
pub mod domain;
pub mod events;
pub mod http;
pub mod jwt;
pub mod kafka;
pub mod process;
pub mod service;
pub mod settings;
pub mod telemetry;

pub use service::{ConsumerSpec, Context, Parts, Running, Service};
