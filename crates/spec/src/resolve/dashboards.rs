//! Grafana's dashboards, decided from the spec: what each shows and with
//! which query. The renderer (`crates/nixgen/src/dashboards.rs`) only lays
//! the panels out; `crates/nixgen/tests/dashboards.rs` checks that every
//! PromQL expression parses (promtool) and that every panel names a
//! provisioned datasource.
//!
//! The metric names are the services' ([`teipsum_conventions::metrics`])
//! and the exporters' own: the PostgreSQL exporter's `pg_*`, the nginx
//! exporter's `nginx_*`, kminion's `kminion_*`, the node exporter's `node_*`.
//! Dead rows come from the services (`teipsum_db_dead_tuples`): the
//! PostgreSQL exporter reads the `postgres` database only, whose tables
//! are not the services'.

use teipsum_conventions::metrics as m;

use crate::plan::{Dashboard, Panel, PanelKind, PanelQuery};

/// The Prometheus datasource's uid.
pub(super) const PROMETHEUS_UID: &str = "teipsum-prometheus";
/// The Loki datasource's uid.
pub(super) const LOKI_UID: &str = "teipsum-loki";

/// A time series panel of Prometheus queries.
fn series(title: &str, unit: &str, queries: &[(&str, &str)]) -> Panel {
    Panel {
        title: title.to_owned(),
        kind: PanelKind::TimeSeries,
        datasource: PROMETHEUS_UID.to_owned(),
        unit: unit.to_owned(),
        queries: queries
            .iter()
            .map(|(expr, legend)| PanelQuery {
                expr: (*expr).to_owned(),
                legend: (*legend).to_owned(),
            })
            .collect(),
    }
}

/// A logs panel of one LogQL query.
fn logs(title: &str, expr: &str) -> Panel {
    Panel {
        title: title.to_owned(),
        kind: PanelKind::Logs,
        datasource: LOKI_UID.to_owned(),
        unit: String::new(),
        queries: vec![PanelQuery {
            expr: expr.to_owned(),
            legend: String::new(),
        }],
    }
}

/// The `q`-quantile of a duration histogram over 5 minutes, by `by`.
fn quantile(q: &str, histogram: &str, by: &str, filter: &str) -> String {
    format!("histogram_quantile({q}, sum by ({by}, le) (rate({histogram}_bucket{filter}[5m])))")
}

/// Every dashboard, in print order. `logs_enabled`: Loki is a datasource.
pub(super) fn dashboards(platform: &str, logs_enabled: bool) -> Vec<Dashboard> {
    let requests = m::HTTP_REQUEST_DURATION;
    let rate = format!("sum by (service) (rate({requests}_count[5m]))");
    // A service that answered no 5xx shows 0, not "no data": its 5xx
    // series do not exist until the first one.
    let errors = format!(
        "(sum by (service) (rate({requests}_count{{http_response_status_code=~\"5..\"}}[5m])) or {rate} * 0) / ({rate} > 0)"
    );
    let route_rate = format!("sum by (service, http_route) (rate({requests}_count[5m]))");
    let p99_service = quantile("0.99", requests, "service", "");
    let p99_route = quantile("0.99", requests, "service, http_route", "");
    let active = format!("sum by (service) ({})", m::HTTP_ACTIVE_REQUESTS);
    let mut overview = vec![
        series("Requests per service", "reqps", &[(&rate, "{{service}}")]),
        series(
            "Share of 5xx answers",
            "percentunit",
            &[(&errors, "{{service}}")],
        ),
        series(
            "Latency p99 per service",
            "s",
            &[(&p99_service, "{{service}}")],
        ),
        series(
            "Requests per route",
            "reqps",
            &[(&route_rate, "{{service}} {{http_route}}")],
        ),
        series(
            "Latency p99 per route",
            "s",
            &[(&p99_route, "{{service}} {{http_route}}")],
        ),
        series("Requests in flight", "short", &[(&active, "{{service}}")]),
        series(
            "Targets up",
            "short",
            &[("up", "{{job}} {{service}} {{instance}}")],
        ),
    ];
    if logs_enabled {
        overview.push(logs(
            "Warnings and errors of the services",
            &format!(
                "{{job=\"journal\", platform=\"{platform}\"}} | json | unit=~\"{platform}-.+\" | priority <= 4"
            ),
        ));
    }

    let saga = vec![
        series(
            "Orders by state",
            "short",
            &[("sum by (state) (teipsum_orders)", "{{state}}")],
        ),
        series(
            "Orders leaving PLACED per minute, by outcome",
            "short",
            &[(
                "sum by (outcome) (rate(teipsum_order_completion_seconds_count[5m])) * 60",
                "{{outcome}}",
            )],
        ),
        series(
            "Placed → final, p50 and p99",
            "s",
            &[
                (
                    &quantile("0.5", "teipsum_order_completion_seconds", "outcome", ""),
                    "p50 {{outcome}}",
                ),
                (
                    &quantile("0.99", "teipsum_order_completion_seconds", "outcome", ""),
                    "p99 {{outcome}}",
                ),
            ],
        ),
        series(
            "Logins by outcome",
            "short",
            &[(
                "sum by (outcome) (rate(teipsum_auth_logins_total[5m])) * 60",
                "{{outcome}} per minute",
            )],
        ),
    ];

    let events = vec![
        series(
            "Published per second",
            "short",
            &[(
                "sum by (service) (rate(teipsum_events_published_total[5m]))",
                "{{service}}",
            )],
        ),
        series(
            "Consumed per second, by outcome",
            "short",
            &[(
                "sum by (service, outcome) (rate(teipsum_events_consumed_total[5m]))",
                "{{service}} {{outcome}}",
            )],
        ),
        series(
            "Consumer lag per topic (the services' view)",
            "short",
            &[(
                &format!("sum by (service, topic) ({})", m::CONSUMER_LAG),
                "{{service}} {{topic}}",
            )],
        ),
        series(
            "Consumer lag per topic (the broker's view, kminion)",
            "short",
            &[(
                "sum by (group_id, topic_name) (kminion_kafka_consumer_group_topic_lag)",
                "{{group_id}} {{topic_name}}",
            )],
        ),
        series(
            "Time on the current batch (a stalled consumer)",
            "s",
            &[(
                &format!("max by (service) ({})", m::CONSUMER_BUSY),
                "{{service}}",
            )],
        ),
        series(
            "Outbox: events waiting",
            "short",
            &[(
                &format!("sum by (service) ({})", m::OUTBOX_WAITING),
                "{{service}}",
            )],
        ),
        series(
            "Outbox: age of the oldest",
            "s",
            &[(
                &format!("max by (service) ({})", m::OUTBOX_OLDEST_AGE),
                "{{service}}",
            )],
        ),
        series(
            "Parked events",
            "short",
            &[(
                &format!("sum by (service) ({})", m::EVENTS_PARKED),
                "{{service}}",
            )],
        ),
        series(
            "Handler time p99",
            "s",
            &[(
                &quantile(
                    "0.99",
                    "teipsum_event_handler_duration_seconds",
                    "service",
                    "",
                ),
                "{{service}}",
            )],
        ),
    ];

    let postgres = vec![
        series(
            "Connections per database",
            "short",
            &[
                ("sum by (datname) (pg_stat_activity_count)", "{{datname}}"),
                ("max(pg_settings_max_connections)", "max_connections"),
            ],
        ),
        series(
            "Database size",
            "bytes",
            &[("pg_database_size_bytes", "{{datname}}")],
        ),
        series(
            "Dead rows per table (autovacuum's backlog)",
            "short",
            &[("topk(10, teipsum_db_dead_tuples)", "{{service}} {{table}}")],
        ),
        series(
            "Replication lag",
            "s",
            &[("pg_replication_lag_seconds", "{{instance}}")],
        ),
        series(
            "The services' pools: connections in use, and wait p99",
            "short",
            &[
                (
                    "sum by (service) (db_client_connection_count{state=\"used\"})",
                    "{{service}} used",
                ),
                (
                    "sum by (service) (db_client_connection_max)",
                    "{{service}} max",
                ),
            ],
        ),
        series(
            "Pool wait p99",
            "s",
            &[(
                &quantile(
                    "0.99",
                    "db_client_connection_wait_time_seconds",
                    "service",
                    "",
                ),
                "{{service}}",
            )],
        ),
    ];

    let mut edge = vec![
        series(
            "Requests per second",
            "reqps",
            &[("rate(nginx_http_requests_total[5m])", "nginx")],
        ),
        series(
            "Connections",
            "short",
            &[
                ("nginx_connections_active", "active"),
                ("nginx_connections_waiting", "waiting"),
            ],
        ),
        series(
            "Certificate days left",
            "short",
            &[(
                &format!("({} - time()) / 86400", m::CERTIFICATE_EXPIRY),
                "{{domain}}",
            )],
        ),
    ];
    if logs_enabled {
        edge.push(logs(
            "nginx",
            &format!(
                "{{job=\"journal\", platform=\"{platform}\"}} | json | unit=\"nginx.service\""
            ),
        ));
    }

    let hosts = vec![
        series(
            "CPU busy",
            "percentunit",
            &[(
                "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
                "{{instance}}",
            )],
        ),
        series(
            "Memory available",
            "bytes",
            &[("node_memory_MemAvailable_bytes", "{{instance}}")],
        ),
        series(
            "Disk free",
            "percentunit",
            &[(
                "node_filesystem_avail_bytes{fstype!~\"tmpfs|ramfs|squashfs|overlay\"} / node_filesystem_size_bytes{fstype!~\"tmpfs|ramfs|squashfs|overlay\"}",
                "{{mountpoint}}",
            )],
        ),
        series(
            "Failed units",
            "short",
            &[("node_systemd_unit_state{state=\"failed\"} == 1", "{{name}}")],
        ),
        series(
            "Hours since the last dump",
            "short",
            &[(
                &format!("(time() - {}) / 3600", m::BACKUP_LAST_SUCCESS),
                "{{database}}",
            )],
        ),
    ];

    let dashboard = |uid: &str, title: &str, panels: Vec<Panel>| Dashboard {
        uid: format!("{platform}-{uid}"),
        title: format!("{platform}: {title}"),
        panels,
    };
    vec![
        dashboard("overview", "overview", overview),
        dashboard("saga", "orders and logins", saga),
        dashboard("events", "events and lag", events),
        dashboard("postgres", "PostgreSQL", postgres),
        dashboard("edge", "the edge", edge),
        dashboard("hosts", "hosts", hosts),
    ]
}
