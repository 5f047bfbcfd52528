//! `teipsum diff` reports every policy the plan decides: unit profiles, the
//! sandbox, edge rules and database access, each as a readable line.

use std::path::Path;

use teipsum_nixgen::diff::{Effect, describe, diff};
use teipsum_spec::{
    load_spec,
    plan::{AccessRule, Plan, RateLimitPlan, RestartPolicy, UnitValue},
};

fn plan() -> Plan {
    let spec = load_spec(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl"))
        .expect("config.ncl is valid");
    spec.plans["prod"].clone()
}

/// What `diff` says about `change`.
fn said(change: impl FnOnce(&mut Plan)) -> (String, Vec<Effect>) {
    let old = plan();
    let mut new = old.clone();
    change(&mut new);
    let changes = diff(&old, &new);
    assert!(!changes.is_empty(), "the change went unreported");
    let effects = changes.iter().flat_map(|c| c.effects.clone()).collect();
    (describe(&changes), effects)
}

fn assert_says(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
}

#[test]
fn an_unchanged_plan_has_no_changes() {
    assert!(diff(&plan(), &plan()).is_empty());
}

#[test]
fn a_changed_service_profile_is_reported_and_restarts_the_unit() {
    let (text, effects) = said(|p| {
        let order = p.services.iter_mut().find(|s| s.name == "order").unwrap();
        order.profile.restart.delay_ms = Some(5_000);
        order.profile.restart.policy = RestartPolicy::Always;
        order.profile.timeout_stop_sec = Some(60);
        order.profile.watchdog_sec = Some(10);
        order.kafka_client_id = "shop-order".into();
    });
    assert_says(
        &text,
        &[
            "~ service order: ",
            "Restart=on-failure → Restart=always",
            "RestartSec 2s → 5s",
            "stop timeout 30s → 60s",
            "watchdog 30s → 10s",
            "Kafka client id teipsum-order → shop-order",
        ],
    );
    assert!(effects.contains(&Effect::Restart("teipsum-order.service".into())));
}

#[test]
fn a_changed_topics_unit_is_reported_and_runs_again() {
    let (text, effects) = said(|p| {
        p.kafka.topics_unit.wait_secs = 60;
        p.kafka.topics_unit.profile.restart.delay_ms = Some(1_000);
    });
    assert_says(
        &text,
        &[
            "~ unit teipsum-topics.service: ",
            "RestartSec 10s → 1s",
            "waits 300s → 60s for the broker",
        ],
    );
    assert!(effects.contains(&Effect::Rerun("teipsum-topics.service".into())));
}

#[test]
fn a_changed_sandbox_restarts_every_sandboxed_unit() {
    let (text, effects) = said(|p| {
        let s = p
            .sandbox
            .iter_mut()
            .find(|s| s.name == "ProtectSystem")
            .unwrap();
        s.value = UnitValue::Str("full".into());
    });
    assert_says(
        &text,
        &[
            "~ sandbox of every unit: ",
            "+ProtectSystem=full",
            "-ProtectSystem=strict",
        ],
    );
    for service in plan().services {
        assert!(effects.contains(&Effect::Restart(service.unit.clone())));
    }
    assert!(effects.contains(&Effect::Rerun("teipsum-topics.service".into())));
}

#[test]
fn changed_edge_rules_are_reported_and_reload_nginx() {
    let (text, effects) = said(|p| {
        let cache = p.nginx.micro_cache.as_mut().unwrap();
        cache.max_size = "1g".into();
        let assets = p
            .nginx
            .static_locations
            .iter_mut()
            .find(|l| l.path.ends_with("/assets/"))
            .unwrap();
        assets.cache_control = "no-store".into();
        p.nginx.api_fallback.as_mut().unwrap().response.message = "nothing here".into();
        p.nginx.rate_limits[0].burst = 5;
        p.nginx.rate_limits.push(RateLimitPlan {
            zone: "teipsum_search".into(),
            purpose: "search".into(),
            methods: vec![],
            zone_size: "10m".into(),
            rate: "5r/s".into(),
            burst: 1,
        });
        p.nginx.presets[0].enabled = false;
    });
    assert_says(
        &text,
        &[
            "~ nginx: ",
            "micro-cache teipsum_micro (10m keys, at most 256m, at /var/cache/nginx/teipsum) → teipsum_micro (10m keys, at most 1g",
            "location /assets/: Cache-Control \"public, max-age=31536000, immutable\", try_files $uri =404 → Cache-Control \"no-store\"",
            "unknown API paths under /api/: 404 NOT_FOUND \"no such API route\" → 404 NOT_FOUND \"nothing here\"",
            "authentication rate limit 10r/s burst 20 in 10m → 10r/s burst 5 in 10m",
            "search rate limit teipsum_search added: 5r/s burst 1",
            "recommendedTlsSettings off",
        ],
    );
    assert!(effects.contains(&Effect::Reload("nginx.service".into())));
}

#[test]
fn a_route_that_changes_its_limits_says_so() {
    let (text, _) = said(|p| {
        let route = p
            .nginx
            .routes
            .iter_mut()
            .find(|r| !r.rate_limits.is_empty())
            .unwrap();
        route.rate_limits.clear();
        route.micro_cache_secs = 9;
    });
    assert_says(&text, &["no longer rate-limited", "micro-cache 0s → 9s"]);
}

#[test]
fn changed_database_access_rules_are_reported_line_by_line() {
    let (text, effects) = said(|p| {
        p.postgres.access.retain(|r| r.user != "postgres");
        p.postgres.access.push(AccessRule {
            connection: "hostssl".into(),
            database: "teipsum_order".into(),
            user: "teipsum_order".into(),
            method: "scram-sha-256".into(),
        });
    });
    assert_says(
        &text,
        &[
            "~ postgresql access: ",
            "+ `hostssl teipsum_order teipsum_order scram-sha-256`",
            "- `local teipsum_order postgres peer`",
        ],
    );
    assert!(effects.contains(&Effect::Reload("postgresql.service".into())));
}

#[test]
fn changed_restarts_of_nixpkgs_units_are_reported() {
    let (text, _) = said(|p| {
        p.kafka.broker_restart.delay_ms = Some(1_000);
        p.acme.order_restart.policy = RestartPolicy::No;
        if let teipsum_spec::plan::KafkaMode::Zookeeper { zookeeper_conf, .. } = &mut p.kafka.mode {
            zookeeper_conf[0].value = "9".into();
        }
    });
    assert_says(
        &text,
        &[
            "~ unit apache-kafka.service: RestartSec 10s → 1s",
            "~ unit acme-order-renew-teipsum.store.service: Restart=on-failure → Restart=no",
            "ZooKeeper initLimit=5",
            "initLimit=9",
        ],
    );
}

#[test]
fn changed_orderings_and_edge_switches_are_reported() {
    let (text, effects) = said(|p| {
        p.acme.order_ordering.wants.clear();
        p.nginx.force_tls = false;
        if let teipsum_spec::plan::KafkaMode::Zookeeper {
            broker_ordering, ..
        } = &mut p.kafka.mode
        {
            broker_ordering.requires.clear();
        }
    });
    assert_says(
        &text,
        &[
            "~ unit acme-order-renew-teipsum.store.service: ordering",
            "HTTPS only off",
            "the broker's ordering after ZooKeeper",
        ],
    );
    assert!(effects.contains(&Effect::Reload("nginx.service".into())));
    assert!(
        !text.contains("domain or ACME account"),
        "the account did not change: {text}"
    );
}

#[test]
fn grafana_and_the_journal_are_reported_when_they_come_go_or_change() {
    let (text, effects) = said(|p| p.monitoring.as_mut().unwrap().logs = None);
    assert_says(&text, &["- logs: the journal shipped by Vector to Loki"]);
    assert!(effects.contains(&Effect::Stop("loki.service".into())));
    assert!(effects.contains(&Effect::Stop("vector.service".into())));
    let (text, effects) = said(|p| {
        let grafana = p.monitoring.as_mut().unwrap().grafana.as_mut().unwrap();
        grafana.dashboards[0].panels.pop();
    });
    assert_says(&text, &["~ Grafana and its dashboards"]);
    assert!(effects.contains(&Effect::Restart("grafana.service".into())));
}
