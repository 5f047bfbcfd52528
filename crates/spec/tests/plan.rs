//! The plans of the committed `config.ncl`: the committed plan files and
//! determinism.

use std::path::{Path, PathBuf};

use teipsum_spec::{
    load_spec,
    plan::{KafkaMode, PackageInput},
};

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl")
}

/// config.ncl merged with `overrides` (Nickel record fields), loaded.
fn config_with(name: &str, overrides: &str) -> teipsum_spec::Spec {
    let dir = std::env::temp_dir().join(format!("teipsum-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.ncl"));
    std::fs::write(
        &file,
        format!("(import \"{}\") & {{ {overrides} }}", config().display()),
    )
    .unwrap();
    load_spec(&file).unwrap()
}

#[test]
fn config_ncl_is_valid_with_two_environments() {
    let spec = load_spec(&config()).expect("config.ncl is valid");
    assert_eq!(spec.plans.keys().collect::<Vec<_>>(), ["prod", "stage"]);
    // The one warning: ZooKeeper mode runs on Kafka 3.9, past upstream support.
    let warnings: Vec<(String, &str)> = spec
        .warnings
        .iter()
        .map(|w| (w.path.to_string(), w.violation.code()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "environments.prod.kafka.mode".to_owned(),
                "zookeeper-unsupported"
            ),
            (
                "environments.stage.kafka.mode".to_owned(),
                "zookeeper-unsupported"
            ),
        ]
    );
}

#[test]
fn kraft_mode_has_no_zookeeper_warning() {
    let spec = config_with(
        "kraft-warning",
        "environments.prod.kafka.mode | force = 'kraft, environments.stage.kafka.mode | force = 'kraft",
    );
    assert!(spec.warnings.is_empty(), "{:?}", spec.warnings);
}

/// The plans are stored once: as `nix/generated/<env>/plan.json`, which
/// `teipsum diff` reads and `teipsum compile --check` guards.
#[test]
fn the_plans_are_the_committed_ones() {
    let spec = load_spec(&config()).unwrap();
    for (env, plan) in &spec.plans {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../nix/generated")
            .join(env)
            .join("plan.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (committed, now) = (&file["plan"], serde_json::to_value(plan).unwrap());
        if *committed == now {
            continue;
        }
        let fields = |v: &serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let (committed, now) = (fields(committed), fields(&now));
        let changed: std::collections::BTreeSet<&String> = committed
            .keys()
            .chain(now.keys())
            .filter(|field| committed.get(*field) != now.get(*field))
            .collect();
        panic!(
            "{}: the plan's {changed:?} changed; run `cargo run -p teipsum-cli -- compile`, \
             review the diff and commit it",
            path.display()
        );
    }
}

#[test]
fn evaluating_twice_gives_identical_bytes() {
    let a = serde_json::to_string(&load_spec(&config()).unwrap().plans).unwrap();
    let b = serde_json::to_string(&load_spec(&config()).unwrap().plans).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_environments_differ_only_where_the_spec_says() {
    let spec = load_spec(&config()).unwrap();
    let (prod, stage) = (&spec.plans["prod"], &spec.plans["stage"]);
    assert_eq!(prod.domain, "teipsum.store");
    assert_eq!(stage.domain, "stage.teipsum.store");
    assert!(!prod.acme.staging && stage.acme.staging);
    assert!(stage.acme.server.contains("staging"));
    assert_eq!(prod.postgres.settings, stage.postgres.settings);
    assert_eq!(prod.postgres.package, "postgresql_15");
    assert!(matches!(
        prod.kafka.mode,
        KafkaMode::Zookeeper {
            zookeeper_port: 2181,
            ..
        }
    ));
    assert_eq!(prod.kafka.package, "apacheKafka_3_9");
    assert_eq!(prod.kafka.package_input, PackageInput::NixpkgsKafka);
    assert_eq!(prod.services.len(), 6);
}

#[test]
fn every_service_has_its_own_database_role_and_user() {
    let spec = load_spec(&config()).unwrap();
    for plan in spec.plans.values() {
        for s in &plan.services {
            assert_eq!(s.database, s.role);
            assert_eq!(s.user, s.role, "peer authentication maps user to role");
            assert_eq!(s.address, "127.0.0.1", "services listen on loopback only");
        }
        let mut dbs: Vec<&str> = plan
            .postgres
            .databases
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        dbs.dedup();
        assert_eq!(dbs.len(), plan.services.len());
    }
}

#[test]
fn the_seed_tuning_reaches_the_plan() {
    let spec = load_spec(&config()).unwrap();
    let settings = serde_json::to_value(&spec.plans["prod"].postgres.settings).unwrap();
    assert_eq!(settings["shared_buffers"], "256MB");
    assert_eq!(settings["effective_cache_size"], "1GB");
    assert_eq!(settings["maintenance_work_mem"], "64MB");
    assert_eq!(settings["checkpoint_completion_target"], 0.9);
    assert_eq!(settings["max_connections"], 200);
    assert_eq!(settings["log_connections"], true);
    assert_eq!(settings["log_disconnections"], true);
    assert_eq!(settings["password_encryption"], "scram-sha-256");
}

#[test]
fn kraft_mode_derives_a_stable_cluster_id() {
    let spec = config_with("kraft", "environments.prod.kafka.mode | force = 'kraft");
    let KafkaMode::Kraft {
        cluster_id,
        controller_port,
    } = &spec.plans["prod"].kafka.mode
    else {
        panic!("not kraft");
    };
    assert_eq!(cluster_id.len(), 22);
    assert_eq!(*controller_port, 9095);
    assert_eq!(spec.plans["prod"].kafka.package, "apacheKafka_4_1");
    // Derived, not random: loading the spec again gives the same id.
    let again = config_with(
        "kraft-again",
        "environments.prod.kafka.mode | force = 'kraft",
    );
    assert_eq!(
        spec.plans["prod"].kafka.mode,
        again.plans["prod"].kafka.mode
    );
}

#[test]
fn each_consumer_is_told_the_producers_of_its_topics_the_lag_bound_and_the_retention() {
    let spec = config_with(
        "producers",
        "environments.prod.outbox_max_lag | force = \"2min\"",
    );
    let plan = &spec.plans["prod"];
    for service in &plan.services {
        let env = &service.environment;
        assert_eq!(
            env["TEIPSUM_OUTBOX_MAX_LAG_SECS"], "120",
            "{}",
            service.name
        );
        // The longest topic retention (30 days) and a week.
        assert_eq!(env["TEIPSUM_RETENTION_SECS"], (37 * 86_400).to_string());
        let Some(producers) = env.get("TEIPSUM_TOPIC_PRODUCERS") else {
            assert!(service.consumes.is_empty(), "{} consumes", service.name);
            continue;
        };
        let parsed = teipsum_conventions::parse_producers(producers).unwrap();
        let topics: Vec<&String> = parsed.iter().map(|(t, _)| t).collect();
        assert_eq!(topics, service.consumes.iter().collect::<Vec<_>>());
        for (topic, producers) in parsed {
            assert_eq!(producers, plan.topic(&topic).unwrap().producers, "{topic}");
        }
    }
    assert_eq!(
        plan.service("order").unwrap().environment["TEIPSUM_TOPIC_PRODUCERS"],
        "inventory-events=inventory;product-events=admin-product"
    );
    assert_eq!(
        spec.plans["stage"].services[0].environment["TEIPSUM_OUTBOX_MAX_LAG_SECS"], "300",
        "the default"
    );
}
