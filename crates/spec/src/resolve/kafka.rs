//! The broker: its complete server.properties, its coordination and its topics.

use std::collections::BTreeMap;

use super::setting;
use crate::{
    plan::{KafkaMode, KafkaPlan, PackageInput, Setting, TopicPlan},
    policy,
    raw::{RawPlatform, RawService},
    rules::Environment,
    units::Coordination,
};

/// Kafka of `environment`.
pub(super) fn resolve(raw: &RawPlatform, environment: &Environment) -> KafkaPlan {
    let k = &environment.spec.kafka;
    let bootstrap = format!("127.0.0.1:{}", k.port);
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    let mut set = |key: &str, value: Setting| {
        settings.insert(key.to_owned(), value);
    };
    // Topics exist only when `teipsum topics apply` declares them: a typo
    // in a service must not create a topic nobody consumes.
    set("auto.create.topics.enable", Setting::Bool(false));
    set(
        "log.dirs",
        Setting::List(vec!["/var/lib/apache-kafka".to_owned()]),
    );
    // One broker: internal topics cannot have more replicas than that.
    set("offsets.topic.replication.factor", Setting::Int(1));
    set("transaction.state.log.replication.factor", Setting::Int(1));
    set("transaction.state.log.min.isr", Setting::Int(1));
    set("num.partitions", Setting::Int(3));
    let mode = match k.mode {
        Coordination::Kraft => {
            let cluster_id = k
                .cluster_id
                .clone()
                .unwrap_or_else(|| derived_cluster_id(&raw.name, &environment.name));
            set("node.id", Setting::Int(1));
            set(
                "process.roles",
                Setting::List(vec!["broker".to_owned(), "controller".to_owned()]),
            );
            set(
                "listeners",
                Setting::List(vec![
                    format!("PLAINTEXT://127.0.0.1:{}", k.port),
                    format!("CONTROLLER://127.0.0.1:{}", k.controller_port),
                ]),
            );
            set(
                "listener.security.protocol.map",
                Setting::List(vec![
                    "PLAINTEXT:PLAINTEXT".to_owned(),
                    "CONTROLLER:PLAINTEXT".to_owned(),
                ]),
            );
            set(
                "controller.listener.names",
                Setting::List(vec!["CONTROLLER".to_owned()]),
            );
            set(
                "controller.quorum.voters",
                Setting::List(vec![format!("1@127.0.0.1:{}", k.controller_port)]),
            );
            KafkaMode::Kraft {
                cluster_id,
                controller_port: k.controller_port,
            }
        }
        Coordination::Zookeeper => {
            set("broker.id", Setting::Int(0));
            set(
                "listeners",
                Setting::List(vec![format!("PLAINTEXT://127.0.0.1:{}", k.port)]),
            );
            set(
                "zookeeper.connect",
                Setting::List(vec![format!("127.0.0.1:{}", k.zookeeper_port)]),
            );
            KafkaMode::Zookeeper {
                zookeeper_port: k.zookeeper_port,
                // The nixpkgs defaults (local JMX only) plus zkServer.sh's heap.
                zookeeper_jvm_options: vec![
                    "-Dcom.sun.management.jmxremote".to_owned(),
                    "-Dcom.sun.management.jmxremote.local.only=true".to_owned(),
                    "-Xms512m".to_owned(),
                    "-Xmx512m".to_owned(),
                ],
                zookeeper_conf: policy::zookeeper_conf(),
                zookeeper_restart: policy::coordination_restart(),
                broker_ordering: policy::broker_after_zookeeper(),
            }
        }
    };
    for (key, value) in &k.settings {
        settings.insert(key.clone(), setting(value));
    }
    let (package, package_input) = match k.mode {
        // ZooKeeper mode ended with Kafka 3.9, which NixOS 26.05 no longer
        // ships: it comes from the second, older nixpkgs input.
        Coordination::Zookeeper => ("apacheKafka_3_9", PackageInput::NixpkgsKafka),
        Coordination::Kraft => ("apacheKafka_4_1", PackageInput::Nixpkgs),
    };

    let topics = raw
        .topics
        .iter()
        .map(|(topic, t)| TopicPlan {
            name: topic.clone(),
            description: t.description.clone(),
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            retention_ms: t.retention.millis(),
            cleanup_policy: t.cleanup_policy.as_str().to_owned(),
            producers: services_that(raw, |s| s.produces.contains(topic)),
            consumers: services_that(raw, |s| s.consumes.contains(topic)),
        })
        .collect();

    KafkaPlan {
        host: k.host.clone(),
        mode,
        package: package.to_owned(),
        package_input,
        // kafka-server-start.sh's KAFKA_HEAP_OPTS default.
        jvm_options: vec!["-Xms1g".to_owned(), "-Xmx1g".to_owned()],
        port: k.port,
        bootstrap,
        settings,
        topics,
        broker_restart: policy::coordination_restart(),
        topics_unit: policy::topics_unit(&raw.name),
    }
}

/// The services for which `uses` holds, sorted by name.
fn services_that(raw: &RawPlatform, uses: impl Fn(&RawService) -> bool) -> Vec<String> {
    raw.services
        .iter()
        .filter(|(_, s)| uses(s))
        .map(|(name, _)| name.clone())
        .collect()
}

/// A stable KRaft cluster id derived from platform and environment names.
fn derived_cluster_id(platform: &str, environment: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("teipsum kraft cluster {platform}/{environment}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::is_cluster_id;

    #[test]
    fn derived_cluster_ids_are_stable_valid_and_distinct() {
        let prod = derived_cluster_id("teipsum", "prod");
        assert_eq!(prod, derived_cluster_id("teipsum", "prod"));
        assert!(is_cluster_id(&prod), "{prod}");
        assert_ne!(prod, derived_cluster_id("teipsum", "stage"));
    }
}
