//! The names the compiler writes into units and the services read back.
//!
//! The generated systemd units, `teipsum dev` and the service kit all take
//! these names from here, so a unit can never set a variable a service does
//! not read. This crate has no dependencies on purpose: every service binary
//! links it.

/// Environment variables a service reads at start. Only non-secret settings
/// travel through the environment; secrets are credential files.
pub mod env {
    /// Service name as in the spec (`order`).
    pub const SERVICE: &str = "TEIPSUM_SERVICE";
    /// `address:port` to listen on (`127.0.0.1:8100`).
    pub const LISTEN: &str = "TEIPSUM_LISTEN";
    /// libpq-style connection string of the service database, without a
    /// password (`host=/run/postgresql port=5432 dbname=teipsum_order user=teipsum_order`).
    pub const DATABASE: &str = "TEIPSUM_DATABASE";
    /// Comma-separated Kafka bootstrap servers.
    pub const KAFKA_BROKERS: &str = "TEIPSUM_KAFKA_BROKERS";
    /// Kafka consumer group of the service.
    pub const KAFKA_GROUP: &str = "TEIPSUM_KAFKA_GROUP";
    /// Kafka client id of the service's producer and consumer
    /// (`teipsum-order`); the service name when unset.
    pub const KAFKA_CLIENT_ID: &str = "TEIPSUM_KAFKA_CLIENT_ID";
    /// Name of the credential holding the CA of a remote database server
    /// (`postgres-ca`); used when that credential file exists.
    pub const DATABASE_CA_CREDENTIAL: &str = "TEIPSUM_DATABASE_CA_CREDENTIAL";
    /// `address:port` of the service's second listener, which serves only
    /// `GET /metrics` (OpenMetrics text) for the monitoring scraper; never
    /// reached through the public edge. Unset: no metrics listener.
    pub const METRICS_LISTEN: &str = "TEIPSUM_METRICS_LISTEN";
    /// Expected (and, for auth, issued) `iss` claim.
    pub const JWT_ISSUER: &str = "TEIPSUM_JWT_ISSUER";
    /// Expected (and, for auth, issued) `aud` claim.
    pub const JWT_AUDIENCE: &str = "TEIPSUM_JWT_AUDIENCE";
    /// Access token lifetime in seconds (auth only).
    pub const ACCESS_TTL_SECS: &str = "TEIPSUM_ACCESS_TTL_SECS";
    /// Refresh token family lifetime in seconds (auth only).
    pub const REFRESH_TTL_SECS: &str = "TEIPSUM_REFRESH_TTL_SECS";
    /// Most password hashes computed at once (auth only; default twice the
    /// cores). Beyond it registration and login answer 503 with `Retry-After`.
    pub const PASSWORD_HASH_CONCURRENCY: &str = "TEIPSUM_PASSWORD_HASH_CONCURRENCY";
    /// The producers the spec declares for each topic the service consumes,
    /// in the form of [`super::render_producers`]
    /// (`inventory-events=inventory;product-events=admin-product`). An event
    /// whose `source` is not among its topic's producers is parked.
    pub const TOPIC_PRODUCERS: &str = "TEIPSUM_TOPIC_PRODUCERS";
    /// Seconds the oldest unsent outbox event may wait before the service
    /// counts as unhealthy (no watchdog ping; systemd restarts it).
    pub const OUTBOX_MAX_LAG_SECS: &str = "TEIPSUM_OUTBOX_MAX_LAG_SECS";
    /// Most events the service's consumer applies in one transaction (a
    /// service that consumes; the spec's `consumer_batch`).
    pub const CONSUMER_BATCH: &str = "TEIPSUM_CONSUMER_BATCH";
    /// Seconds consumed-event ids (the consumer ledger) and idempotency keys
    /// are kept: longer than any topic keeps an event that could be redelivered.
    pub const RETENTION_SECS: &str = "TEIPSUM_RETENTION_SECS";
    /// `tracing` filter directive (`info`, `teipsum_kit=debug`).
    pub const LOG: &str = "TEIPSUM_LOG";
    /// Most units of one product in one order (order only).
    pub const ORDER_MAX_UNITS: &str = "TEIPSUM_ORDER_MAX_UNITS";
    /// Most open orders of one customer (order only): `PLACED`, or
    /// `CONFIRMED` less than [`ORDER_OPEN_FOR_SECS`] ago.
    pub const ORDER_MAX_OPEN: &str = "TEIPSUM_ORDER_MAX_OPEN";
    /// Seconds a confirmed order counts as open after it was placed (order only).
    pub const ORDER_OPEN_FOR_SECS: &str = "TEIPSUM_ORDER_OPEN_FOR_SECS";
    /// Seconds an order may stay `PLACED` before it expires (order only).
    pub const ORDER_CONFIRM_WITHIN_SECS: &str = "TEIPSUM_ORDER_CONFIRM_WITHIN_SECS";
    /// Directory of credential files for local runs; systemd's
    /// `CREDENTIALS_DIRECTORY` wins when both are set.
    pub const CREDENTIALS_DIR: &str = "TEIPSUM_CREDENTIALS_DIR";
    /// Set by systemd when a unit has `LoadCredential=`.
    pub const SYSTEMD_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
}

/// Credential (file) names inside `$CREDENTIALS_DIRECTORY`.
pub mod credentials {
    /// PKCS#8 PEM Ed25519 private key that signs access tokens (auth only).
    pub const JWT_SIGNING_KEY: &str = "jwt-signing-key";
    /// SPKI PEM Ed25519 public key that verifies access tokens.
    pub const JWT_PUBLIC_KEY: &str = "jwt-public-key";
    /// PEM CA certificates that sign a remote PostgreSQL server's certificate.
    pub const POSTGRES_CA: &str = "postgres-ca";
}

/// What the services expose on `/metrics` and the generated alert rules
/// read: one list of names for both.
pub mod metrics {
    /// Upper bounds, in seconds, of every duration histogram; the latency
    /// SLO of `monitoring.alerts.latency` must be one of them.
    pub const DURATION_BUCKETS: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    /// Histogram of request durations, by `http_request_method`,
    /// `http_route` (the route template) and `http_response_status_code`.
    pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
    /// Requests being answered, by `http_request_method`.
    pub const HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
    /// Outbox rows not yet published.
    pub const OUTBOX_WAITING: &str = "teipsum_outbox_waiting";
    /// Age of the oldest unpublished outbox row (0 when empty).
    pub const OUTBOX_OLDEST_AGE: &str = "teipsum_outbox_oldest_age_seconds";
    /// Events parked by the consumer.
    pub const EVENTS_PARKED: &str = "teipsum_events_parked";
    /// Events the consumer group is behind, by `topic` and `partition`
    /// (the group's committed offsets against the high watermarks, read
    /// from the broker at each scrape).
    pub const CONSUMER_LAG: &str = "teipsum_consumer_lag";
    /// Seconds the service's consumer has spent on the batch of events it
    /// is applying now (0 between batches): it grows while a handler waits
    /// on a lock or on an upgrade, whether or not events wait behind it.
    pub const CONSUMER_BUSY: &str = "teipsum_consumer_busy_seconds";
    /// Partitions assigned to the service's consumer.
    pub const CONSUMER_ASSIGNED_PARTITIONS: &str = "teipsum_consumer_assigned_partitions";
    /// Unix time of a database's last successful dump, by `database`
    /// (written by the backup unit for the node exporter's textfile collector).
    pub const BACKUP_LAST_SUCCESS: &str = "teipsum_backup_last_success_timestamp_seconds";
    /// Unix time the edge's certificate expires, by `domain` (written after
    /// each certificate order for the textfile collector).
    pub const CERTIFICATE_EXPIRY: &str = "teipsum_certificate_expiry_timestamp_seconds";
}

/// systemd unit of a service (`teipsum-order.service`).
pub fn unit_name(platform: &str, service: &str) -> String {
    format!("{platform}-{service}.service")
}

/// Executable of a service (`teipsum-order`).
pub fn binary_name(platform: &str, service: &str) -> String {
    format!("{platform}-{service}")
}

/// Kafka consumer group of a service (`teipsum-order`).
pub fn consumer_group(platform: &str, service: &str) -> String {
    format!("{platform}-{service}")
}

/// Kafka client id of a service (`teipsum-order`).
pub fn kafka_client_id(platform: &str, service: &str) -> String {
    format!("{platform}-{service}")
}

/// The oneshot unit that provisions the topics before services start.
pub fn topics_unit(platform: &str) -> String {
    format!("{platform}-topics.service")
}

/// The oneshot that creates the token signing key pair on first boot
/// (nix/modules/jwt-key.nix); units that load either half start after it.
pub fn jwt_key_unit(platform: &str) -> String {
    format!("{platform}-jwt-key.service")
}

/// The value of [`env::TOPIC_PRODUCERS`]: `topic=producer,producer;topic=producer`,
/// topics and producers in the order given (callers pass them sorted).
pub fn render_producers<'a>(topics: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> String {
    topics
        .into_iter()
        .map(|(topic, producers)| format!("{topic}={}", producers.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

/// [`render_producers`] read back: `(topic, producers)` pairs, or what is wrong.
pub fn parse_producers(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let name = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    text.split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (topic, producers) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}`: expected topic=producer,producer"))?;
            let producers: Vec<String> = producers.split(',').map(str::to_owned).collect();
            if !name(topic) || !producers.iter().all(|p| name(p)) {
                return Err(format!(
                    "`{entry}`: topic and producer names are lowercase letters, digits and `-`"
                ));
            }
            Ok((topic.to_owned(), producers))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_render_and_parse_back() {
        let text = render_producers([
            ("inventory-events", vec!["inventory"]),
            ("product-events", vec!["admin-product", "importer"]),
        ]);
        assert_eq!(
            text,
            "inventory-events=inventory;product-events=admin-product,importer"
        );
        let back = parse_producers(&text).unwrap();
        assert_eq!(back[1].0, "product-events");
        assert_eq!(back[1].1, ["admin-product", "importer"]);
        assert!(parse_producers("order-events").is_err());
        assert!(parse_producers("order-events=").is_err());
        assert!(parse_producers("Order=x").is_err());
        assert_eq!(parse_producers("").unwrap(), vec![]);
    }

    #[test]
    fn names_follow_the_platform_prefix() {
        assert_eq!(unit_name("teipsum", "order"), "teipsum-order.service");
        assert_eq!(
            binary_name("teipsum", "admin-product"),
            "teipsum-admin-product"
        );
        assert_eq!(consumer_group("teipsum", "user"), "teipsum-user");
        assert_eq!(topics_unit("teipsum"), "teipsum-topics.service");
    }
}
