//! The spec exactly as Nickel exports it, before any cross-reference check.
//!
//! These types mirror `platform.ncl` field for field, with every value
//! already parsed: durations are [`Duration`]s, memory sizes [`MemorySize`]s,
//! enum tags are enums, settings are scalars. Nickel's contracts have checked
//! shapes and formats when a value gets here; the serde layer is a second line
//! (`deny_unknown_fields`, integer ranges, the parsers of [`crate::units`]) so
//! that a schema and model drifting apart is caught as an error that names the
//! field. Nothing downstream parses a string of the spec again.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::units::{
    AcmeCa, CleanupPolicy, Compression, Coordination, Duration, LogLevel, MemorySize, System,
};

/// A whole platform spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlatform {
    /// Name of the platform; prefixes units, users and consumer groups.
    pub name: String,
    /// The microservices, by name.
    pub services: BTreeMap<String, RawService>,
    /// Kafka topics, by name.
    pub topics: BTreeMap<String, RawTopic>,
    /// The static storefront.
    pub frontend: RawFrontend,
    /// Deployment environments, by name.
    pub environments: BTreeMap<String, RawEnvironment>,
}

/// One microservice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// One line for the unit's `Description=`.
    pub description: String,
    /// Loopback TCP port.
    pub port: u16,
    /// Loopback TCP port of `/metrics`.
    pub metrics_port: u16,
    /// URL prefixes nginx routes to the service.
    pub routes: Vec<String>,
    /// Database, role and system user name.
    pub database: String,
    /// Topics published through the outbox.
    pub produces: Vec<String>,
    /// Topics consumed.
    pub consumes: Vec<String>,
    /// Credential name → host file path.
    pub secrets: BTreeMap<String, String>,
    /// Liveness path.
    pub health: String,
    /// Readiness path.
    pub ready: String,
    /// Whether nginx rate-limits the routes as authentication endpoints.
    pub auth_endpoint: bool,
    /// How long nginx may serve cached responses (`0s`: never).
    pub micro_cache: Duration,
    /// systemd `MemoryMax=` (`512M`).
    pub memory_max: MemorySize,
    /// systemd `TasksMax=`.
    pub tasks_max: u32,
    /// Most events one consumer transaction applies.
    pub consumer_batch: u32,
    /// Removed (registration granted the admin role to listed addresses);
    /// declared only so that a spec still setting it gets a clear error.
    #[serde(default)]
    pub admin_emails: Option<serde::de::IgnoredAny>,
    /// Whether nginx rate-limits `POST`s to the routes as order placements.
    pub placement_endpoint: bool,
    /// Per-customer order caps and the confirmation window (order only).
    #[serde(default)]
    pub order_limits: Option<RawOrderLimits>,
}

/// `services.<name>.order_limits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrderLimits {
    /// Most units of one product in one order.
    pub max_units_per_product: u32,
    /// Most open orders per customer.
    pub max_open_orders: u32,
    /// How long an order may stay `PLACED`.
    pub confirm_within: Duration,
    /// How long a confirmed order counts as open after it was placed.
    pub open_for: Duration,
}

/// One Kafka topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    /// What the events mean.
    pub description: String,
    /// Partition count.
    pub partitions: u32,
    /// Replica count.
    pub replication_factor: u16,
    /// How long the broker keeps events (`retention.ms`).
    pub retention: Duration,
    /// `delete` or `compact`.
    pub cleanup_policy: CleanupPolicy,
}

/// The storefront.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrontend {
    /// Directory of the static files, relative to the repository root.
    pub root: String,
    /// URL prefix.
    pub route: String,
    /// Serve `index.html` for unknown paths.
    pub spa_fallback: bool,
}

/// One machine of an environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Address other hosts use.
    pub address: String,
    /// Nix system.
    pub system: System,
}

/// One deployment environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// Public DNS name.
    pub domain: String,
    /// Machines by name.
    pub hosts: BTreeMap<String, RawHost>,
    /// Let's Encrypt account.
    pub acme: RawAcme,
    /// PostgreSQL server.
    pub postgres: RawPostgres,
    /// Kafka broker.
    pub kafka: RawKafka,
    /// nginx edge.
    pub nginx: RawNginx,
    /// Metrics, alerts and their delivery.
    pub monitoring: RawMonitoring,
    /// Services' log level.
    pub log_level: LogLevel,
    /// systemd `WatchdogSec` of the services.
    pub watchdog: Duration,
    /// How long the oldest unsent outbox event may wait before a service
    /// stops its watchdog pings.
    pub outbox_max_lag: Duration,
    /// Access token settings.
    pub jwt: RawJwt,
}

/// `monitoring`: Prometheus, the exporters, the alert rules, Alertmanager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitoring {
    /// Whether the environment is monitored.
    pub enable: bool,
    /// Prometheus' scrape interval.
    pub scrape_interval: Duration,
    /// How long Prometheus keeps samples.
    pub retention: Duration,
    /// Loopback ports of the monitoring components.
    pub ports: RawMonitoringPorts,
    /// Where alerts go.
    #[serde(default)]
    pub receiver: Option<RawReceiver>,
    /// Grafana and its dashboards.
    pub grafana: RawGrafana,
    /// The journal shipped to Loki.
    pub logs: RawLogs,
    /// Alert thresholds.
    pub alerts: RawAlerts,
}

/// `monitoring.grafana`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrafana {
    /// Whether Grafana runs.
    pub enable: bool,
    /// File holding Grafana's `secret_key`.
    #[serde(default)]
    pub secret_key_file: Option<String>,
    /// File holding the `admin` account's password.
    #[serde(default)]
    pub admin_password_file: Option<String>,
}

/// `monitoring.logs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// Whether the journal goes to Loki.
    pub enable: bool,
    /// How long Loki keeps lines.
    pub retention: Duration,
}

/// `monitoring.ports`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitoringPorts {
    /// Prometheus.
    pub prometheus: u16,
    /// Alertmanager.
    pub alertmanager: u16,
    /// The node exporter.
    pub node_exporter: u16,
    /// The PostgreSQL exporter.
    pub postgres_exporter: u16,
    /// The nginx exporter.
    pub nginx_exporter: u16,
    /// kminion.
    pub kafka_exporter: u16,
    /// Grafana.
    pub grafana: u16,
    /// Loki's HTTP API.
    pub loki: u16,
    /// Loki's gRPC.
    pub loki_grpc: u16,
}

/// `monitoring.receiver`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    /// Receiver name.
    pub name: String,
    /// File holding a webhook URL.
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// E-mail delivery.
    #[serde(default)]
    pub email: Option<RawEmail>,
}

/// `monitoring.receiver.email`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Recipient.
    pub to: String,
    /// Sender.
    pub from: String,
    /// `host:port` of the SMTP server.
    pub smarthost: String,
    /// SMTP login.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `monitoring.alerts`: thresholds of the generated rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// Availability SLO.
    pub availability: f64,
    /// Latency SLO threshold.
    pub latency: Duration,
    /// Share of requests faster than `latency`.
    pub latency_objective: f64,
    /// Consumer lag (events) that alerts while growing.
    pub consumer_lag: u32,
    /// Time on one batch of events that alerts.
    pub consumer_stalled: Duration,
    /// Age of the oldest unsent outbox event that alerts.
    pub outbox_oldest: Duration,
    /// Share of `max_connections` in use that alerts.
    pub postgres_connections: f64,
    /// Share of a filesystem left free that alerts.
    pub disk_free: f64,
    /// Age of the last successful dump that alerts.
    pub backup_max_age: Duration,
    /// Certificate time left that alerts.
    pub certificate_expiry: Duration,
}

/// ACME settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    /// Account contact.
    pub email: String,
    /// `letsencrypt` or `letsencrypt_staging`.
    pub ca: AcmeCa,
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// Major version.
    pub version: u8,
    /// TCP port.
    pub port: u16,
    /// Host name (in `hosts`).
    pub host: String,
    /// postgresql.conf settings.
    pub settings: BTreeMap<String, RawSetting>,
    /// Dump schedule.
    pub backup: RawBackup,
}

/// Backup settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// systemd calendar event.
    pub schedule: String,
    /// `none`, `gzip` or `zstd`.
    pub compression: Compression,
    /// Dump directory.
    pub location: String,
}

/// Kafka settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// `zookeeper` or `kraft`.
    pub mode: Coordination,
    /// Broker port.
    pub port: u16,
    /// Host name (in `hosts`).
    pub host: String,
    /// ZooKeeper client port.
    pub zookeeper_port: u16,
    /// KRaft controller port.
    pub controller_port: u16,
    /// KRaft cluster id.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Extra server.properties.
    pub settings: BTreeMap<String, RawSetting>,
}

/// nginx settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNginx {
    /// gzip text responses.
    pub gzip: bool,
    /// Request body limit.
    pub client_max_body_size: String,
    /// Authentication rate limit.
    pub auth_rate_limit: RawRateLimit,
    /// Order placement rate limit.
    pub order_rate_limit: RawRateLimit,
    /// Upstream keepalive connections.
    pub keepalive: u32,
    /// Headers on every response.
    pub security_headers: BTreeMap<String, String>,
    /// CSP of the API.
    pub api_csp: String,
    /// CSP of the storefront.
    pub frontend_csp: String,
}

/// A `limit_req` rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `10r/s`.
    pub rate: String,
    /// Burst size.
    pub burst: u32,
}

/// Access token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Refresh token family lifetime.
    pub refresh_ttl: Duration,
}

/// A postgresql.conf or server.properties value: a scalar, as
/// `platform.ncl`'s `SettingValue` allows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RawSetting {
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits an `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// Text (the rules check that it can be written safely).
    Str(String),
}
