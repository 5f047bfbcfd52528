//! Policy the spec has no field for is decided in the plan, once, and
//! follows the platform's name; what a service needs of it reaches the
//! service through its unit's environment.

use std::path::{Path, PathBuf};

use teipsum_conventions::env;
use teipsum_spec::{Plan, load_spec};

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl")
}

fn prod() -> Plan {
    load_spec(&config()).unwrap().plans["prod"].clone()
}

/// config.ncl under another platform name.
fn renamed(name: &str) -> Plan {
    let dir = std::env::temp_dir().join(format!("teipsum-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("renamed.ncl");
    std::fs::write(
        &file,
        format!(
            "(import \"{}\") & {{ name | force = \"{name}\" }}",
            config().display()
        ),
    )
    .unwrap();
    load_spec(&file).unwrap().plans["prod"].clone()
}

#[test]
fn edge_and_unit_names_follow_the_platform() {
    let plan = renamed("shop");
    let nginx = &plan.nginx;
    let cache = nginx
        .micro_cache
        .as_ref()
        .expect("config.ncl caches a route");
    assert_eq!(cache.name, "shop_micro");
    assert_eq!(cache.path, "/var/cache/nginx/shop");
    assert_eq!(nginx.limit_key.variable, "shop_limit_key");
    assert!(
        nginx
            .rate_limits
            .iter()
            .all(|l| l.zone.starts_with("shop_"))
    );
    assert!(
        nginx
            .edge_errors
            .iter()
            .all(|e| e.location.starts_with("@shop_error_"))
    );
    assert_eq!(plan.kafka.topics_unit.unit, "shop-topics.service");
    for s in &plan.services {
        assert_eq!(s.kafka_client_id, format!("shop-{}", s.name));
    }
    // Only the compiler's own binary keeps its name.
    assert_eq!(plan.kafka.topics_unit.binary, "teipsum");
}

#[test]
fn what_a_service_reads_of_the_policy_is_in_its_environment() {
    for s in &prod().services {
        assert_eq!(s.environment[env::KAFKA_CLIENT_ID], s.kafka_client_id);
        assert_eq!(
            s.environment[env::DATABASE_CA_CREDENTIAL],
            s.database_ca_credential
        );
        assert_eq!(
            s.environment.get(env::KAFKA_GROUP),
            s.consumer_group.as_ref()
        );
    }
}

#[test]
fn every_route_names_declared_rate_limit_zones() {
    let plan = prod();
    for r in &plan.nginx.routes {
        for zone in &r.rate_limits {
            assert!(
                plan.nginx.rate_limits.iter().any(|l| &l.zone == zone),
                "{} names an undeclared zone {zone}",
                r.prefix
            );
        }
    }
}

#[test]
fn every_database_admits_its_own_role_and_rejects_the_rest() {
    let plan = prod();
    for d in &plan.postgres.databases {
        let rules: Vec<String> = plan
            .postgres
            .access
            .iter()
            .filter(|r| r.database == d.name)
            .map(|r| r.line())
            .collect();
        assert_eq!(
            rules,
            [
                format!("local {} {} peer", d.name, d.role),
                format!("local {} postgres peer", d.name),
                format!("local {} all reject", d.name),
            ]
        );
    }
}
