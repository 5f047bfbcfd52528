//! `teipsum explain` prints the plan and nothing else: it takes only a plan,
//! the process environment does not change what it says, and each policy
//! field it shows, changed in the plan, changes its text.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use teipsum_cli::commands::explain_text;
use teipsum_spec::{
    Plan, load_spec,
    plan::{RestartPolicy, UnitKind},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plan() -> Plan {
    load_spec(&root().join("config.ncl"))
        .expect("config.ncl is valid")
        .plans["prod"]
        .clone()
}

fn explain(plan: &Plan) -> String {
    explain_text(plan, "order").expect("config.ncl has an order service")
}

fn order(plan: &mut Plan) -> &mut teipsum_spec::plan::ServicePlan {
    plan.services
        .iter_mut()
        .find(|s| s.name == "order")
        .unwrap()
}

#[test]
fn explain_takes_only_a_plan() {
    let _: fn(&Plan, &str) -> Option<String> = explain_text;
}

#[test]
fn explain_says_what_the_plan_says_whatever_the_environment() {
    let expected = explain(&plan());
    let out = Command::new(env!("CARGO_BIN_EXE_teipsum"))
        .args(["explain", "order"])
        .current_dir(root())
        .env_clear()
        .env("TEIPSUM_KAFKA_GROUP", "elsewhere")
        .env("TEIPSUM_KAFKA_CLIENT_ID", "elsewhere")
        .env("TEIPSUM_LOG", "trace")
        .env("HOSTNAME", "another-host")
        .env("TZ", "Pacific/Kiritimati")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn the_unit_line_is_the_services_profile() {
    let before = explain(&plan());
    assert!(
        before.contains(
            "(Type=notify, WatchdogSec=30s, Restart=on-failure, RestartSec=2s, TimeoutStopSec=30s)"
        ),
        "{before}"
    );
    let mut changed = plan();
    let profile = &mut order(&mut changed).profile;
    profile.kind = UnitKind::Oneshot;
    profile.watchdog_sec = Some(9);
    profile.restart.policy = RestartPolicy::Always;
    profile.restart.delay_ms = Some(7_500);
    profile.timeout_stop_sec = None;
    let after = explain(&changed);
    assert!(
        after.contains("(Type=oneshot, WatchdogSec=9s, Restart=always, RestartSec=7500ms)"),
        "{after}"
    );
}

#[test]
fn client_id_group_and_environment_are_the_plans() {
    let mut changed = plan();
    let order = order(&mut changed);
    order.kafka_client_id = "shop-order".into();
    order.consumer_group = Some("shop-orders".into());
    order
        .environment
        .insert("TEIPSUM_KAFKA_CLIENT_ID".into(), "shop-order".into());
    let after = explain(&changed);
    for needle in [
        "client id   shop-order",
        "group       shop-orders",
        "TEIPSUM_KAFKA_CLIENT_ID=shop-order",
    ] {
        assert!(after.contains(needle), "missing {needle}:\n{after}");
    }
}
