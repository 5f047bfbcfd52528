//! Monitoring: scrape targets, exporters, alert rules and their delivery.
//!
//! The alert rules are decided here, from the spec's thresholds and the
//! metric names the services expose ([`teipsum_conventions::metrics`]);
//! renderers print them (`alert-rules.yml`, `monitoring.nix`) and the
//! promtool tests of `crates/nixgen/tests/alerts.rs` prove that each fires
//! when it should and stays silent otherwise.

use std::collections::BTreeMap;

use teipsum_conventions::metrics as m;

use super::{LOOPBACK, dashboards};
use crate::{
    plan::*,
    raw::{RawMonitoring, RawPlatform},
    rules::Environment,
};

/// Where Alertmanager finds a credential it loads (`LoadCredential=`).
const ALERTMANAGER_CREDENTIALS: &str = "/run/credentials/alertmanager.service";

/// The textfile collector's directory.
const TEXTFILE_DIR: &str = "/var/lib/prometheus-node-exporter-text";

/// The plan of a monitored environment; `None` when `monitoring.enable` is false.
pub(super) fn resolve(
    raw: &RawPlatform,
    environment: &Environment,
    postgres: &PostgresPlan,
    kafka: &KafkaPlan,
    acme_unit: &str,
) -> Option<MonitoringPlan> {
    let spec = &environment.spec;
    let monitoring = &spec.monitoring;
    if !monitoring.enable {
        return None;
    }
    let receiver = monitoring
        .receiver
        .as_ref()
        .expect("the rules require a receiver when monitoring is enabled");
    let ports = &monitoring.ports;
    let local = |port: u16| format!("{LOOPBACK}:{port}");
    let job = |job: &str, port: u16| ScrapeJob {
        job: job.to_owned(),
        targets: vec![ScrapeTarget {
            address: local(port),
            labels: BTreeMap::new(),
        }],
    };
    let services = ScrapeJob {
        job: "services".to_owned(),
        targets: raw
            .services
            .iter()
            .map(|(name, s)| ScrapeTarget {
                address: local(s.metrics_port),
                labels: BTreeMap::from([("service".to_owned(), name.clone())]),
            })
            .collect(),
    };
    let scrape = vec![
        services,
        job("node", ports.node_exporter),
        job("postgres", ports.postgres_exporter),
        job("nginx", ports.nginx_exporter),
        job("kafka", ports.kafka_exporter),
        job("prometheus", ports.prometheus),
        job("alertmanager", ports.alertmanager),
    ];
    let (delivery, credentials) = delivery(receiver);
    let backups: Vec<BackupWatch> = postgres
        .backup
        .databases
        .iter()
        .map(|database| BackupWatch {
            database: database.clone(),
            unit: format!("postgresqlBackup-{database}"),
            max_age_secs: monitoring.alerts.backup_max_age.millis() / 1000,
        })
        .collect();
    let databases: Vec<&str> = backups.iter().map(|b| b.database.as_str()).collect();
    // The platform's consumer groups, as the broker (kminion) names them.
    let groups: Vec<String> = raw
        .services
        .iter()
        .filter(|(_, s)| !s.consumes.is_empty())
        .map(|(name, _)| teipsum_conventions::consumer_group(&raw.name, name))
        .collect();
    Some(MonitoringPlan {
        address: LOOPBACK.to_owned(),
        prometheus: PrometheusPlan {
            port: ports.prometheus,
            interval: prometheus_duration(monitoring.scrape_interval.millis()),
            retention: prometheus_duration(monitoring.retention.millis()),
            rule_file: "alert-rules.yml".to_owned(),
        },
        scrape,
        exporters: ExportersPlan {
            node_port: ports.node_exporter,
            node_collectors: vec!["systemd".to_owned()],
            postgres_port: ports.postgres_exporter,
            nginx_port: ports.nginx_exporter,
            nginx_status_url: "http://127.0.0.1/nginx_status".to_owned(),
            kafka_port: ports.kafka_exporter,
            kafka_brokers: kafka.bootstrap.split(',').map(str::to_owned).collect(),
        },
        alertmanager: AlertmanagerPlan {
            port: ports.alertmanager,
            receiver: receiver.name.clone(),
            delivery,
            group_by: vec!["alertname".to_owned(), "service".to_owned()],
            timing: ["30s".to_owned(), "5m".to_owned(), "4h".to_owned()],
            credentials,
        },
        rules: rules(monitoring, &databases, &spec.domain, &groups),
        textfile_dir: TEXTFILE_DIR.to_owned(),
        backups,
        certificate: CertificateWatch {
            domain: spec.domain.clone(),
            path: format!("/var/lib/acme/{}/cert.pem", spec.domain),
            unit: acme_unit.to_owned(),
            warn_secs: monitoring.alerts.certificate_expiry.millis() / 1000,
        },
        grafana: grafana(raw, monitoring),
        logs: logs(raw, monitoring, kafka, acme_unit),
    })
}

/// Where Grafana finds a credential it loads.
const GRAFANA_CREDENTIALS: &str = "/run/credentials/grafana.service";

/// Grafana with Prometheus (and Loki) provisioned, and the dashboards.
fn grafana(raw: &RawPlatform, monitoring: &RawMonitoring) -> Option<GrafanaPlan> {
    let grafana = &monitoring.grafana;
    if !grafana.enable {
        return None;
    }
    let file = |file: &Option<String>| {
        file.clone()
            .expect("the rules require Grafana's secret files when it is enabled")
    };
    let ports = &monitoring.ports;
    let mut datasources = vec![Datasource {
        name: "Prometheus".to_owned(),
        uid: dashboards::PROMETHEUS_UID.to_owned(),
        kind: "prometheus".to_owned(),
        url: format!("http://{LOOPBACK}:{}", ports.prometheus),
    }];
    if monitoring.logs.enable {
        datasources.push(Datasource {
            name: "Loki".to_owned(),
            uid: dashboards::LOKI_UID.to_owned(),
            kind: "loki".to_owned(),
            url: format!("http://{LOOPBACK}:{}", ports.loki),
        });
    }
    let credential = |name: &str, path: String| CredentialPlan {
        name: name.to_owned(),
        path,
    };
    Some(GrafanaPlan {
        port: ports.grafana,
        secret_key_file: format!("{GRAFANA_CREDENTIALS}/secret-key"),
        admin_password_file: format!("{GRAFANA_CREDENTIALS}/admin-password"),
        credentials: vec![
            credential("admin-password", file(&grafana.admin_password_file)),
            credential("secret-key", file(&grafana.secret_key_file)),
        ],
        secrets_unit: format!("{}-grafana-secrets.service", raw.name),
        datasources,
        dashboard_dir: "dashboards".to_owned(),
        dashboards: dashboards::dashboards(&raw.name, monitoring.logs.enable),
    })
}

/// The journal of every unit of the platform, to Loki.
fn logs(
    raw: &RawPlatform,
    monitoring: &RawMonitoring,
    kafka: &KafkaPlan,
    acme_unit: &str,
) -> Option<LogsPlan> {
    if !monitoring.logs.enable {
        return None;
    }
    let mut units: Vec<String> = raw
        .services
        .keys()
        .map(|name| teipsum_conventions::unit_name(&raw.name, name))
        .collect();
    units.extend(
        [
            "postgresql.service",
            "nginx.service",
            "apache-kafka.service",
            kafka.topics_unit.unit.as_str(),
        ]
        .map(str::to_owned),
    );
    // The journal names units in full; the ACME order unit's name has
    // the domain's dots in it.
    units.push(format!(
        "{}.service",
        acme_unit.trim_end_matches(".service")
    ));
    if matches!(kafka.mode, KafkaMode::Zookeeper { .. }) {
        units.push("zookeeper.service".to_owned());
    }
    units.sort();
    units.dedup();
    let field = |name: &str, journal: &str| LogField {
        name: name.to_owned(),
        journal: journal.to_owned(),
    };
    Some(LogsPlan {
        port: monitoring.ports.loki,
        grpc_port: monitoring.ports.loki_grpc,
        retention: format!("{}h", monitoring.logs.retention.millis() / 3_600_000),
        units,
        stream: BTreeMap::from([
            ("job".to_owned(), "journal".to_owned()),
            ("platform".to_owned(), raw.name.clone()),
        ]),
        // The services' tracing fields as tracing-journald names them (`F_`
        // and the name in capitals); span fields are on every line inside
        // the span, so a request's or an event's lines share its id.
        fields: [
            field("unit", "_SYSTEMD_UNIT"),
            field("priority", "PRIORITY"),
        ]
        .into_iter()
        .chain(
            [
                "request_id",
                "order_id",
                "event_id",
                "product_id",
                "user_id",
                "topic",
                "consumer",
            ]
            .into_iter()
            .map(|name| field(name, &format!("F_{}", name.to_uppercase()))),
        )
        .collect(),
    })
}

/// The receiver's delivery, its secret files handed to the unit as credentials.
fn delivery(receiver: &crate::raw::RawReceiver) -> (Delivery, Vec<CredentialPlan>) {
    let credential = |name: &str, path: &str| {
        (
            format!("{ALERTMANAGER_CREDENTIALS}/{name}"),
            CredentialPlan {
                name: name.to_owned(),
                path: path.to_owned(),
            },
        )
    };
    if let Some(url_file) = &receiver.webhook_url_file {
        let (file, cred) = credential("webhook-url", url_file);
        return (Delivery::Webhook { url_file: file }, vec![cred]);
    }
    let email = receiver
        .email
        .as_ref()
        .expect("the rules require exactly one delivery");
    let password = email
        .password_file
        .as_deref()
        .map(|path| credential("smtp-password", path));
    let delivery = Delivery::Email {
        to: email.to.clone(),
        from: email.from.clone(),
        smarthost: email.smarthost.clone(),
        username: email.username.clone(),
        password_file: password.as_ref().map(|(file, _)| file.clone()),
    };
    (delivery, password.into_iter().map(|(_, c)| c).collect())
}

/// A duration as Prometheus writes it: the largest whole unit (`15s`, `30d`).
pub fn prometheus_duration(millis: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// A number as PromQL reads it, without float noise (`0.001`, `86400`).
fn number(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// Every rule, grouped.
fn rules(
    monitoring: &RawMonitoring,
    databases: &[&str],
    domain: &str,
    groups: &[String],
) -> Vec<AlertGroup> {
    let a = &monitoring.alerts;
    // kminion's series of the platform's groups only (group names are
    // `[a-z0-9-]`, nothing a regex would read specially).
    let ours = format!("group_id=~\"{}\"", groups.join("|"));
    let rule =
        |alert: &str, expr: String, hold: &str, severity: &str, summary: &str, runbook: &str| {
            AlertRule {
                alert: alert.to_owned(),
                expr,
                hold: hold.to_owned(),
                severity: severity.to_owned(),
                summary: summary.to_owned(),
                runbook: runbook.to_owned(),
            }
        };
    let requests = m::HTTP_REQUEST_DURATION;
    // Multi-window, multi-burn-rate (the SRE workbook): a fast burn pages
    // when 2 % of a 30-day budget went in an hour, a slow one when 5 % went
    // in six hours; the short window makes the alert stop soon after a fix.
    let burn = |bad: &dyn Fn(&str) -> String, window: &str| {
        format!(
            "({}) / (sum by (service) (rate({requests}_count[{window}])) > 0)",
            bad(window)
        )
    };
    let errors = |w: &str| {
        format!(
            "sum by (service) (rate({requests}_count{{http_response_status_code=~\"5..\"}}[{w}]))"
        )
    };
    // OpenMetrics writes a whole bound as `1.0`, the text format as `1`.
    let millis = a.latency.millis();
    let le = if millis.is_multiple_of(1000) {
        format!("le=~\"{0}|{0}.0\"", millis / 1000)
    } else {
        format!("le=\"{}\"", number(millis as f64 / 1000.0))
    };
    let slow = |w: &str| {
        format!(
            "sum by (service) (rate({requests}_count[{w}])) - sum by (service) (rate({requests}_bucket{{{le}}}[{w}]))"
        )
    };
    let error_budget = 1.0 - a.availability;
    let latency_budget = 1.0 - a.latency_objective;
    let burning =
        |bad: &dyn Fn(&str) -> String, budget: f64, factor: f64, long: &str, short: &str| {
            let limit = number(factor * budget);
            format!(
                "{} > {limit}\nand\n{} > {limit}",
                burn(bad, long),
                burn(bad, short)
            )
        };
    let backup_missing: Vec<String> = databases
        .iter()
        .map(|d| format!("absent({}{{database=\"{d}\"}})", m::BACKUP_LAST_SUCCESS))
        .collect();
    let backup_age = a.backup_max_age.millis() / 1000;
    let expiry = a.certificate_expiry.millis() / 1000;
    let filesystems = "fstype!~\"tmpfs|ramfs|squashfs|overlay\"";
    vec![
        AlertGroup {
            name: "teipsum-targets".to_owned(),
            rules: vec![
                rule(
                    "TeipsumTargetDown",
                    "up == 0".to_owned(),
                    "2m",
                    "page",
                    "{{ $labels.job }} {{ $labels.service }} at {{ $labels.instance }} does not answer its scrape",
                    "systemctl status and journalctl -u of the unit behind the target; a service that fails its start logs why",
                ),
                rule(
                    "TeipsumUnitFailed",
                    "node_systemd_unit_state{state=\"failed\"} == 1".to_owned(),
                    "1m",
                    "page",
                    "unit {{ $labels.name }} has failed",
                    "journalctl -u {{ $labels.name }} -b; systemctl reset-failed once the cause is fixed",
                ),
            ],
        },
        AlertGroup {
            name: "teipsum-slo".to_owned(),
            rules: vec![
                rule(
                    "TeipsumErrorBudgetBurnFast",
                    burning(&errors, error_budget, 14.4, "1h", "5m"),
                    "2m",
                    "page",
                    "{{ $labels.service }} answers 5xx at 14.4 times its error budget",
                    "journalctl -u teipsum-{{ $labels.service }} for `internal error`; check its database and the broker",
                ),
                rule(
                    "TeipsumErrorBudgetBurnSlow",
                    burning(&errors, error_budget, 6.0, "6h", "30m"),
                    "15m",
                    "ticket",
                    "{{ $labels.service }} answers 5xx at 6 times its error budget",
                    "compare the service's errors by route on the dashboard; look for a recent deploy",
                ),
                rule(
                    "TeipsumLatencyBudgetBurnFast",
                    burning(&slow, latency_budget, 14.4, "1h", "5m"),
                    "2m",
                    "page",
                    "{{ $labels.service }} is slower than its latency objective at 14.4 times the budget",
                    "check the service's database (pg_stat_activity, locks) and the host's CPU",
                ),
                rule(
                    "TeipsumLatencyBudgetBurnSlow",
                    burning(&slow, latency_budget, 6.0, "6h", "30m"),
                    "15m",
                    "ticket",
                    "{{ $labels.service }} is slower than its latency objective at 6 times the budget",
                    "compare latency by route on the dashboard; a slow query shows in pg_stat_statements",
                ),
            ],
        },
        AlertGroup {
            name: "teipsum-events".to_owned(),
            rules: vec![
                rule(
                    "TeipsumConsumerLagHigh",
                    format!(
                        "sum by (service, topic) ({lag}) > {limit}\nand\nsum by (service, topic) (delta({lag}[10m])) > 0",
                        lag = m::CONSUMER_LAG,
                        limit = a.consumer_lag
                    ),
                    "5m",
                    "page",
                    "{{ $labels.service }} is more events behind on {{ $labels.topic }} than the spec allows, and falling further behind",
                    "journalctl -u teipsum-{{ $labels.service }}: a handler retrying a transient error logs it; check the service's database",
                ),
                rule(
                    "TeipsumConsumerGroupLagHigh",
                    format!(
                        "sum by (group_id, topic_name) ({lag}) > {limit}\nand\nsum by (group_id, topic_name) (delta({lag}[10m])) > 0",
                        lag = format_args!("kminion_kafka_consumer_group_topic_lag{{{ours}}}"),
                        limit = a.consumer_lag
                    ),
                    "5m",
                    "page",
                    "consumer group {{ $labels.group_id }} is more events behind on {{ $labels.topic_name }} than the spec allows, and falling further behind (the broker's view: it holds when the service is dead)",
                    "teipsum status shows the group's lag and the service's unit; systemctl status of the group's service, then its journal",
                ),
                rule(
                    "TeipsumConsumerGroupEmpty",
                    format!(
                        "max by (group_id) (kminion_kafka_consumer_group_members{{{ours}}}) == 0"
                    ),
                    "5m",
                    "page",
                    "consumer group {{ $labels.group_id }} has no members: nothing consumes its topics",
                    "systemctl status of the group's service (teipsum-<service>); it joins again when it starts",
                ),
                rule(
                    "TeipsumConsumerWithoutPartitions",
                    format!(
                        "max by (service) ({}) == 0",
                        m::CONSUMER_ASSIGNED_PARTITIONS
                    ),
                    "5m",
                    "page",
                    "{{ $labels.service }}'s consumer has no partitions: nothing consumes its topics",
                    "restart teipsum-{{ $labels.service }}; if it stays at 0, check the broker and the group with kafka-consumer-groups.sh --describe",
                ),
                rule(
                    "TeipsumConsumerStalled",
                    format!(
                        "max by (service) ({}) > {}",
                        m::CONSUMER_BUSY,
                        a.consumer_stalled.millis() / 1000
                    ),
                    "1m",
                    "page",
                    "{{ $labels.service }}'s consumer has been on one batch of events for longer than the spec allows",
                    "journalctl -u teipsum-{{ $labels.service }}: a handler waiting on a lock (pg_locks of its database), retrying an error, or holding at an event version this build does not know",
                ),
                rule(
                    "TeipsumOutboxStuck",
                    format!(
                        "max by (service) ({}) > {}",
                        m::OUTBOX_OLDEST_AGE,
                        a.outbox_oldest.millis() / 1000
                    ),
                    "1m",
                    "page",
                    "{{ $labels.service }} has an event waiting to be published for longer than the spec allows",
                    "check the broker (systemctl status apache-kafka); the service restarts itself past outbox_max_lag",
                ),
                rule(
                    "TeipsumEventsParked",
                    format!("max by (service) ({}) > 0", m::EVENTS_PARKED),
                    "1m",
                    "ticket",
                    "{{ $labels.service }} parked events it could not apply",
                    "teipsum-{{ $labels.service }} events parked shows why; fix, then events replay --id or --all",
                ),
            ],
        },
        AlertGroup {
            name: "teipsum-storage".to_owned(),
            rules: vec![
                rule(
                    "TeipsumPostgresConnectionsHigh",
                    format!(
                        "sum(pg_stat_activity_count) / max(pg_settings_max_connections) > {}",
                        number(a.postgres_connections)
                    ),
                    "5m",
                    "page",
                    "PostgreSQL uses more of max_connections than the spec allows",
                    "SELECT datname, usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2, 3",
                ),
                rule(
                    "TeipsumDiskAlmostFull",
                    format!(
                        "node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}} < {}",
                        number(a.disk_free)
                    ),
                    "5m",
                    "page",
                    "{{ $labels.mountpoint }} has less space left than the spec allows",
                    "du -xsh /var/lib/* /var/backup/* | sort -h; old dumps and journals go first (journalctl --vacuum-size)",
                ),
                rule(
                    "TeipsumDiskFillingUp",
                    format!(
                        "predict_linear(node_filesystem_avail_bytes{{{filesystems}}}[6h], 24 * 3600) < 0\nand\nnode_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}} < 0.4"
                    ),
                    "1h",
                    "ticket",
                    "{{ $labels.mountpoint }} fills up within 24 hours at the rate of the last 6",
                    "find what grows (du -xsh /var/lib/*); PostgreSQL and Kafka state is under /var/lib",
                ),
                rule(
                    "TeipsumBackupTooOld",
                    format!(
                        "time() - {} > {backup_age}{}",
                        m::BACKUP_LAST_SUCCESS,
                        backup_missing
                            .iter()
                            .map(|absent| format!("\nor\n{absent}"))
                            .collect::<String>()
                    ),
                    "1h",
                    "page",
                    "the last dump of {{ $labels.database }} is older than the schedule allows, or there is none",
                    "systemctl status postgresqlBackup-{{ $labels.database }}; run it by hand with systemctl start",
                ),
                rule(
                    "TeipsumCertificateExpiring",
                    format!(
                        "{}{{domain=\"{domain}\"}} - time() < {expiry}\nor\nabsent({}{{domain=\"{domain}\"}})",
                        m::CERTIFICATE_EXPIRY,
                        m::CERTIFICATE_EXPIRY
                    ),
                    "1h",
                    "page",
                    "the certificate of {{ $labels.domain }} expires in less than the spec allows, or its expiry is unknown",
                    "journalctl -u acme-order-renew-{{ $labels.domain }}: the ACME order logs why it failed",
                ),
            ],
        },
    ]
}
