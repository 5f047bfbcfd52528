//! Every generated alert rule, run by `promtool test rules` (Prometheus'
//! own evaluator) against series written here: each rule has a case where
//! it fires and one where it stays silent, with config.ncl's `prod`
//! thresholds. A rule without both cases fails the test, so a new rule
//! comes with its proof.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use serde_json::{Value, json};
use teipsum_nixgen::monitoring::rules_json;
use teipsum_spec::{load_spec, plan::AlertRule};

/// One scenario: series sampled every `interval`, evaluated at `at`.
struct Case {
    alert: &'static str,
    what: &'static str,
    interval: &'static str,
    series: Vec<(&'static str, &'static str)>,
    at: &'static str,
    /// The labels of every alert expected at `at` (without `severity`);
    /// empty: the rule stays silent.
    fires: Vec<Vec<(&'static str, &'static str)>>,
}

fn case(
    alert: &'static str,
    what: &'static str,
    interval: &'static str,
    series: Vec<(&'static str, &'static str)>,
    at: &'static str,
    fires: Vec<Vec<(&'static str, &'static str)>>,
) -> Case {
    Case {
        alert,
        what,
        interval,
        series,
        at,
        fires,
    }
}

const DATABASES: [&str; 6] = [
    "teipsum_admin_product",
    "teipsum_auth",
    "teipsum_catalog",
    "teipsum_inventory",
    "teipsum_order",
    "teipsum_user",
];

fn cases() -> Vec<Case> {
    let order = vec![("service", "order")];
    let requests = |code: &'static str| -> &'static str {
        match code {
            "500" => {
                "http_server_request_duration_seconds_count{service=\"order\",http_route=\"/api/orders/\",http_request_method=\"POST\",http_response_status_code=\"500\"}"
            }
            _ => {
                "http_server_request_duration_seconds_count{service=\"order\",http_route=\"/api/orders/\",http_request_method=\"POST\",http_response_status_code=\"201\"}"
            }
        }
    };
    let fast = "http_server_request_duration_seconds_bucket{service=\"order\",http_route=\"/api/orders/\",http_request_method=\"POST\",http_response_status_code=\"201\",le=\"0.5\"}";
    let backups = |old: Option<&'static str>, missing: Option<&'static str>| {
        DATABASES
            .iter()
            .filter(|d| Some(**d) != missing)
            .map(|d| {
                let name: &'static str = Box::leak(
                    format!("teipsum_backup_last_success_timestamp_seconds{{database=\"{d}\"}}")
                        .into_boxed_str(),
                );
                // Hourly samples: a dump every hour, or none since time 0.
                (name, if Some(*d) == old { "0x30" } else { "0+3600x30" })
            })
            .collect::<Vec<_>>()
    };
    vec![
        case(
            "TeipsumTargetDown",
            "a scrape failing for 5 minutes",
            "1m",
            vec![(
                "up{job=\"services\",service=\"order\",instance=\"127.0.0.1:18100\"}",
                "0x10",
            )],
            "5m",
            vec![vec![
                ("job", "services"),
                ("service", "order"),
                ("instance", "127.0.0.1:18100"),
            ]],
        ),
        case(
            "TeipsumTargetDown",
            "a target that answers",
            "1m",
            vec![(
                "up{job=\"services\",service=\"order\",instance=\"127.0.0.1:18100\"}",
                "1x10",
            )],
            "5m",
            vec![],
        ),
        case(
            "TeipsumUnitFailed",
            "a failed unit",
            "1m",
            vec![(
                "node_systemd_unit_state{name=\"teipsum-order.service\",state=\"failed\"}",
                "1x10",
            )],
            "5m",
            vec![vec![("name", "teipsum-order.service"), ("state", "failed")]],
        ),
        case(
            "TeipsumUnitFailed",
            "an active unit",
            "1m",
            vec![(
                "node_systemd_unit_state{name=\"teipsum-order.service\",state=\"failed\"}",
                "0x10",
            )],
            "5m",
            vec![],
        ),
        case(
            "TeipsumErrorBudgetBurnFast",
            "10 % of requests failing for 2 hours",
            "1m",
            vec![(requests("500"), "0+10x120"), (requests("201"), "0+90x120")],
            "120m",
            vec![order.clone()],
        ),
        case(
            "TeipsumErrorBudgetBurnFast",
            "0.1 % failing, the budget itself",
            "1m",
            vec![(requests("500"), "0+1x120"), (requests("201"), "0+999x120")],
            "120m",
            vec![],
        ),
        case(
            "TeipsumErrorBudgetBurnSlow",
            "1 % failing for 8 hours",
            "1m",
            vec![(requests("500"), "0+1x480"), (requests("201"), "0+99x480")],
            "480m",
            vec![order.clone()],
        ),
        case(
            "TeipsumErrorBudgetBurnSlow",
            "0.1 % failing for 8 hours",
            "1m",
            vec![(requests("500"), "0+1x480"), (requests("201"), "0+999x480")],
            "480m",
            vec![],
        ),
        case(
            "TeipsumLatencyBudgetBurnFast",
            "20 % of requests slower than 500ms",
            "1m",
            vec![(requests("201"), "0+100x120"), (fast, "0+80x120")],
            "120m",
            vec![order.clone()],
        ),
        case(
            "TeipsumLatencyBudgetBurnFast",
            "every request fast",
            "1m",
            vec![(requests("201"), "0+100x120"), (fast, "0+100x120")],
            "120m",
            vec![],
        ),
        case(
            "TeipsumLatencyBudgetBurnSlow",
            "8 % slower than 500ms for 8 hours",
            "1m",
            vec![(requests("201"), "0+100x480"), (fast, "0+92x480")],
            "480m",
            vec![order.clone()],
        ),
        case(
            "TeipsumLatencyBudgetBurnSlow",
            "1 % slower, the budget itself",
            "1m",
            vec![(requests("201"), "0+100x480"), (fast, "0+99x480")],
            "480m",
            vec![],
        ),
        case(
            "TeipsumConsumerLagHigh",
            "lag past 1000 and growing",
            "1m",
            vec![(
                "teipsum_consumer_lag{service=\"inventory\",topic=\"order-events\",partition=\"0\"}",
                "0+100x30",
            )],
            "30m",
            vec![vec![("service", "inventory"), ("topic", "order-events")]],
        ),
        case(
            "TeipsumConsumerLagHigh",
            "lag past 1000 but shrinking",
            "1m",
            vec![(
                "teipsum_consumer_lag{service=\"inventory\",topic=\"order-events\",partition=\"0\"}",
                "5000-100x30",
            )],
            "30m",
            vec![],
        ),
        case(
            "TeipsumConsumerGroupLagHigh",
            "the broker sees a dead consumer's group fall behind",
            "1m",
            vec![(
                "kminion_kafka_consumer_group_topic_lag{group_id=\"teipsum-inventory\",topic_name=\"order-events\"}",
                "0+100x30",
            )],
            "30m",
            vec![vec![
                ("group_id", "teipsum-inventory"),
                ("topic_name", "order-events"),
            ]],
        ),
        case(
            "TeipsumConsumerGroupLagHigh",
            "another platform's group, or ours catching up",
            "1m",
            vec![
                (
                    "kminion_kafka_consumer_group_topic_lag{group_id=\"someone-else\",topic_name=\"order-events\"}",
                    "0+100x30",
                ),
                (
                    "kminion_kafka_consumer_group_topic_lag{group_id=\"teipsum-inventory\",topic_name=\"order-events\"}",
                    "5000-100x30",
                ),
            ],
            "30m",
            vec![],
        ),
        case(
            "TeipsumConsumerGroupEmpty",
            "inventory's group without members for 10 minutes",
            "1m",
            vec![(
                "kminion_kafka_consumer_group_members{group_id=\"teipsum-inventory\"}",
                "1 1 0x10",
            )],
            "10m",
            vec![vec![("group_id", "teipsum-inventory")]],
        ),
        case(
            "TeipsumConsumerGroupEmpty",
            "a member back within the hold",
            "1m",
            vec![(
                "kminion_kafka_consumer_group_members{group_id=\"teipsum-inventory\"}",
                "1 0 0 0 1x8",
            )],
            "10m",
            vec![],
        ),
        case(
            "TeipsumConsumerWithoutPartitions",
            "no partitions for 10 minutes",
            "1m",
            vec![(
                "teipsum_consumer_assigned_partitions{service=\"inventory\",instance=\"127.0.0.1:18110\"}",
                "0x20",
            )],
            "10m",
            vec![vec![("service", "inventory")]],
        ),
        case(
            "TeipsumConsumerWithoutPartitions",
            "three partitions",
            "1m",
            vec![(
                "teipsum_consumer_assigned_partitions{service=\"inventory\",instance=\"127.0.0.1:18110\"}",
                "3x20",
            )],
            "10m",
            vec![],
        ),
        case(
            "TeipsumConsumerStalled",
            "a handler waiting on a lock for 10 minutes",
            "1m",
            vec![(
                "teipsum_consumer_busy_seconds{service=\"inventory\"}",
                "0+60x10",
            )],
            "10m",
            vec![vec![("service", "inventory")]],
        ),
        case(
            "TeipsumConsumerStalled",
            "batches that end within a second",
            "1m",
            vec![(
                "teipsum_consumer_busy_seconds{service=\"inventory\"}",
                "0 0.2 0 0.5 0 0 0.1 0 0 0 0",
            )],
            "10m",
            vec![],
        ),
        case(
            "TeipsumOutboxStuck",
            "the oldest event ageing for 10 minutes",
            "1m",
            vec![(
                "teipsum_outbox_oldest_age_seconds{service=\"order\"}",
                "0+60x10",
            )],
            "10m",
            vec![order.clone()],
        ),
        case(
            "TeipsumOutboxStuck",
            "an outbox that drains",
            "1m",
            vec![(
                "teipsum_outbox_oldest_age_seconds{service=\"order\"}",
                "0x10",
            )],
            "10m",
            vec![],
        ),
        case(
            "TeipsumEventsParked",
            "one parked event",
            "1m",
            vec![("teipsum_events_parked{service=\"order\"}", "1x10")],
            "5m",
            vec![order.clone()],
        ),
        case(
            "TeipsumEventsParked",
            "none parked",
            "1m",
            vec![("teipsum_events_parked{service=\"order\"}", "0x10")],
            "5m",
            vec![],
        ),
        case(
            "TeipsumPostgresConnectionsHigh",
            "190 of 200 connections",
            "1m",
            vec![
                (
                    "pg_stat_activity_count{datname=\"teipsum_order\",state=\"active\"}",
                    "190x10",
                ),
                ("pg_settings_max_connections", "200x10"),
            ],
            "10m",
            vec![vec![]],
        ),
        case(
            "TeipsumPostgresConnectionsHigh",
            "20 of 200 connections",
            "1m",
            vec![
                (
                    "pg_stat_activity_count{datname=\"teipsum_order\",state=\"active\"}",
                    "20x10",
                ),
                ("pg_settings_max_connections", "200x10"),
            ],
            "10m",
            vec![],
        ),
        case(
            "TeipsumDiskAlmostFull",
            "5 % free",
            "1m",
            vec![
                (
                    "node_filesystem_avail_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "5x10",
                ),
                (
                    "node_filesystem_size_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "100x10",
                ),
            ],
            "10m",
            vec![vec![("mountpoint", "/"), ("fstype", "ext4")]],
        ),
        case(
            "TeipsumDiskAlmostFull",
            "50 % free, and a full tmpfs",
            "1m",
            vec![
                (
                    "node_filesystem_avail_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "50x10",
                ),
                (
                    "node_filesystem_size_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "100x10",
                ),
                (
                    "node_filesystem_avail_bytes{mountpoint=\"/run\",fstype=\"tmpfs\"}",
                    "0x10",
                ),
                (
                    "node_filesystem_size_bytes{mountpoint=\"/run\",fstype=\"tmpfs\"}",
                    "100x10",
                ),
            ],
            "10m",
            vec![],
        ),
        case(
            "TeipsumDiskFillingUp",
            "losing 0.1 % a minute with 32 % left",
            "1m",
            vec![
                (
                    "node_filesystem_avail_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "80-0.1x480",
                ),
                (
                    "node_filesystem_size_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "100x480",
                ),
            ],
            "480m",
            vec![vec![("mountpoint", "/"), ("fstype", "ext4")]],
        ),
        case(
            "TeipsumDiskFillingUp",
            "32 % left, steady",
            "1m",
            vec![
                (
                    "node_filesystem_avail_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "32x480",
                ),
                (
                    "node_filesystem_size_bytes{mountpoint=\"/\",fstype=\"ext4\"}",
                    "100x480",
                ),
            ],
            "480m",
            vec![],
        ),
        case(
            "TeipsumBackupTooOld",
            "one database not dumped for 30 hours",
            "1h",
            backups(Some("teipsum_order"), None),
            "30h",
            vec![vec![("database", "teipsum_order")]],
        ),
        case(
            "TeipsumBackupTooOld",
            "one database never dumped",
            "1h",
            backups(None, Some("teipsum_user")),
            "30h",
            vec![vec![("database", "teipsum_user")]],
        ),
        case(
            "TeipsumBackupTooOld",
            "every database dumped within the hour",
            "1h",
            backups(None, None),
            "30h",
            vec![],
        ),
        case(
            "TeipsumCertificateExpiring",
            "10 days left",
            "1h",
            vec![(
                "teipsum_certificate_expiry_timestamp_seconds{domain=\"teipsum.store\"}",
                "864000x5",
            )],
            "3h",
            vec![vec![("domain", "teipsum.store")]],
        ),
        case(
            "TeipsumCertificateExpiring",
            "no expiry recorded",
            "1h",
            vec![("up{job=\"node\",instance=\"127.0.0.1:9100\"}", "1x5")],
            "3h",
            vec![vec![("domain", "teipsum.store")]],
        ),
        case(
            "TeipsumCertificateExpiring",
            "30 days left",
            "1h",
            vec![(
                "teipsum_certificate_expiry_timestamp_seconds{domain=\"teipsum.store\"}",
                "2592000x5",
            )],
            "3h",
            vec![],
        ),
    ]
}

/// `{{ $labels.x }}` replaced as Prometheus' template would (no other
/// template function is used in the generated annotations).
fn render(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    while let Some(start) = out.find("{{ $labels.") {
        let end = out[start..].find(" }}").expect("closed template") + start;
        let name = &out[start + "{{ $labels.".len()..end];
        let value = labels.get(name).cloned().unwrap_or_default();
        out.replace_range(start..end + " }}".len(), &value);
    }
    assert!(
        !out.contains("{{"),
        "an annotation uses a template the test cannot render: {template}"
    );
    out
}

#[test]
fn every_alert_rule_fires_when_it_should_and_stays_silent_otherwise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = load_spec(&root.join("config.ncl")).expect("config.ncl loads");
    let plan = &spec.plans["prod"];
    let monitoring = plan.monitoring.as_ref().expect("prod is monitored");
    let rules: BTreeMap<&str, &AlertRule> = monitoring
        .rules
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| (r.alert.as_str(), r))
        .collect();

    let cases = cases();
    let mut fired = BTreeSet::new();
    let mut silent = BTreeSet::new();
    let mut tests = Vec::new();
    for c in &cases {
        let rule = rules
            .get(c.alert)
            .unwrap_or_else(|| panic!("a case for `{}`, which is not a generated rule", c.alert));
        if c.fires.is_empty() {
            silent.insert(c.alert);
        } else {
            fired.insert(c.alert);
        }
        let expected: Vec<Value> = c
            .fires
            .iter()
            .map(|labels| {
                let mut labels: BTreeMap<String, String> = labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                labels.insert("severity".to_owned(), rule.severity.clone());
                json!({
                    "exp_labels": labels,
                    "exp_annotations": {
                        "summary": render(&rule.summary, &labels),
                        "runbook": render(&rule.runbook, &labels),
                    },
                })
            })
            .collect();
        tests.push(json!({
            "name": format!("{}: {}", c.alert, c.what),
            "interval": c.interval,
            "input_series": c.series.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
            "alert_rule_test": [{ "eval_time": c.at, "alertname": c.alert, "exp_alerts": expected }],
        }));
    }
    let missing: Vec<_> = rules
        .keys()
        .filter(|r| !fired.contains(*r) || !silent.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "every rule needs a case that fires and one that stays silent; missing for {missing:?}"
    );

    let dir = std::env::temp_dir().join(format!("teipsum-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rule_file = dir.join("alert-rules.yml");
    std::fs::write(&rule_file, rules_json(monitoring, "test")).unwrap();
    let test_file = dir.join("tests.json");
    let document = json!({
        "rule_files": [rule_file.display().to_string()],
        "evaluation_interval": "1m",
        "tests": tests,
    });
    std::fs::write(&test_file, serde_json::to_string_pretty(&document).unwrap()).unwrap();

    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rule_file)
        .output()
        .expect("promtool runs (scripts/setup.sh installs Debian's prometheus)");
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let run = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .expect("promtool runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "promtool test rules ({} cases):\n{}{}",
        cases.len(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
