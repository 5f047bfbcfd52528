//! The services: their units' identity, environment, ordering and limits.

use std::collections::BTreeMap;

use teipsum_conventions::{self as conventions, env};

use super::LOOPBACK;
use crate::{
    plan::{CredentialPlan, KafkaPlan, PostgresPlan, ServicePlan},
    policy,
    raw::{RawPlatform, RawService},
    rules::Environment,
};

/// Every service of `environment`, sorted by name.
pub(super) fn resolve(
    raw: &RawPlatform,
    environment: &Environment,
    postgres: &PostgresPlan,
    kafka: &KafkaPlan,
) -> Vec<ServicePlan> {
    let platform = &raw.name;
    let spec = &environment.spec;
    // Consumed-event ids and idempotency keys outlive every event a topic
    // could still deliver again, with a week to spare.
    let retention_secs = raw
        .topics
        .values()
        .map(|t| t.retention.secs())
        .fold(0, u64::max)
        + 7 * 86_400;
    let topics_unit = conventions::topics_unit(platform);
    let jwt_key_unit = conventions::jwt_key_unit(platform);
    raw.services
        .iter()
        .map(|(service, s)| {
            // Fields of the plan that also reach the process: one value for both.
            let kafka_client_id = policy::kafka_client_id(platform, service);
            let database_ca_credential = policy::database_ca_credential();
            let mut environment_vars = BTreeMap::new();
            let mut set = |k: &str, v: String| {
                environment_vars.insert(k.to_owned(), v);
            };
            set(env::SERVICE, service.clone());
            set(env::LISTEN, format!("{LOOPBACK}:{}", s.port));
            let metrics_port = spec.monitoring.enable.then_some(s.metrics_port);
            if let Some(port) = metrics_port {
                set(env::METRICS_LISTEN, format!("{LOOPBACK}:{port}"));
            }
            set(
                env::DATABASE,
                format!(
                    "host={} port={} dbname={} user={}",
                    postgres.socket_dir, postgres.port, s.database, s.database
                ),
            );
            set(env::KAFKA_BROKERS, kafka.bootstrap.clone());
            set(env::KAFKA_CLIENT_ID, kafka_client_id.clone());
            set(env::DATABASE_CA_CREDENTIAL, database_ca_credential.clone());
            set(env::JWT_ISSUER, spec.jwt.issuer.clone());
            set(env::JWT_AUDIENCE, spec.jwt.audience.clone());
            set(env::LOG, spec.log_level.as_str().to_owned());
            let consumer_group =
                (!s.consumes.is_empty()).then(|| conventions::consumer_group(platform, service));
            if let Some(group) = &consumer_group {
                set(env::KAFKA_GROUP, group.clone());
                set(env::CONSUMER_BATCH, s.consumer_batch.to_string());
                let mut consumed: Vec<&String> = s.consumes.iter().collect();
                consumed.sort();
                set(
                    env::TOPIC_PRODUCERS,
                    conventions::render_producers(consumed.into_iter().map(|topic| {
                        // BTreeMap order: producers sorted by name.
                        let producers = raw
                            .services
                            .iter()
                            .filter(|(_, p)| p.produces.contains(topic))
                            .map(|(name, _)| name.as_str())
                            .collect();
                        (topic.as_str(), producers)
                    })),
                );
            }
            set(
                env::OUTBOX_MAX_LAG_SECS,
                spec.outbox_max_lag.secs().to_string(),
            );
            set(env::RETENTION_SECS, retention_secs.to_string());
            if s.secrets
                .contains_key(conventions::credentials::JWT_SIGNING_KEY)
            {
                set(env::ACCESS_TTL_SECS, spec.jwt.access_ttl.secs().to_string());
                set(
                    env::REFRESH_TTL_SECS,
                    spec.jwt.refresh_ttl.secs().to_string(),
                );
            }
            if let Some(limits) = &s.order_limits {
                set(
                    env::ORDER_MAX_UNITS,
                    limits.max_units_per_product.to_string(),
                );
                set(env::ORDER_MAX_OPEN, limits.max_open_orders.to_string());
                set(
                    env::ORDER_CONFIRM_WITHIN_SECS,
                    limits.confirm_within.secs().to_string(),
                );
                set(env::ORDER_OPEN_FOR_SECS, limits.open_for.secs().to_string());
            }
            let (after, wants) = ordering(s, &topics_unit, &jwt_key_unit);
            let mut produces = s.produces.clone();
            produces.sort();
            let mut consumes = s.consumes.clone();
            consumes.sort();
            ServicePlan {
                name: service.clone(),
                description: s.description.clone(),
                unit: conventions::unit_name(platform, service),
                binary: conventions::binary_name(platform, service),
                user: s.database.clone(),
                group: s.database.clone(),
                host: environment.edge.clone(),
                address: LOOPBACK.to_owned(),
                port: s.port,
                metrics_port,
                database: s.database.clone(),
                role: s.database.clone(),
                routes: s.routes.clone(),
                produces,
                consumes,
                consumer_group,
                credentials: s
                    .secrets
                    .iter()
                    .map(|(name, path)| CredentialPlan {
                        name: name.clone(),
                        path: path.clone(),
                    })
                    .collect(),
                environment: environment_vars,
                kafka_client_id,
                database_ca_credential,
                profile: policy::service_profile(spec.watchdog.secs()),
                health: s.health.clone(),
                ready: s.ready.clone(),
                after,
                wants,
                requires: vec!["postgresql.target".to_owned()],
                memory_max: s.memory_max.to_string(),
                tasks_max: s.tasks_max,
            }
        })
        .collect()
}

/// The units a service starts after (`after`) and pulls in softly (`wants`).
fn ordering(s: &RawService, topics_unit: &str, jwt_key_unit: &str) -> (Vec<String>, Vec<String>) {
    let mut after = vec![
        "network-online.target".to_owned(),
        "postgresql.target".to_owned(),
    ];
    let mut wants = vec!["network-online.target".to_owned()];
    if !s.produces.is_empty() || !s.consumes.is_empty() {
        after.push(topics_unit.to_owned());
        wants.push(topics_unit.to_owned());
    }
    let uses_jwt_key = [
        conventions::credentials::JWT_SIGNING_KEY,
        conventions::credentials::JWT_PUBLIC_KEY,
    ]
    .iter()
    .any(|c| s.secrets.contains_key(*c));
    if uses_jwt_key {
        // A no-op where the host provides the key by other means.
        after.push(jwt_key_unit.to_owned());
        wants.push(jwt_key_unit.to_owned());
    }
    (after, wants)
}
