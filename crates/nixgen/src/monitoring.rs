//! Plan → `monitoring.nix` and `alert-rules.json`: Prometheus, its
//! exporters, Alertmanager and the timestamps the backup and certificate
//! units leave for the node exporter. Everything is printed from the
//! [`MonitoringPlan`]; nothing is decided here.

use teipsum_conventions::metrics as m;
use teipsum_spec::plan::{Delivery, MonitoringPlan};

use crate::nix::{Attrs, Nix, Part};

/// The rules as Prometheus reads them: YAML whose body is JSON (YAML's
/// flow style), after a comment line with the generated marker; stable bytes.
pub fn rules_json(monitoring: &MonitoringPlan, marker: &str) -> String {
    let groups: Vec<serde_json::Value> = monitoring
        .rules
        .iter()
        .map(|group| {
            let rules: Vec<serde_json::Value> = group
                .rules
                .iter()
                .map(|rule| {
                    serde_json::json!({
                        "alert": rule.alert,
                        "expr": rule.expr,
                        "for": rule.hold,
                        "labels": { "severity": rule.severity },
                        "annotations": { "summary": rule.summary, "runbook": rule.runbook },
                    })
                })
                .collect();
            serde_json::json!({ "name": group.name, "rules": rules })
        })
        .collect();
    let value = serde_json::json!({ "groups": groups });
    let mut text = format!("# {marker}\n");
    text.push_str(&serde_json::to_string_pretty(&value).expect("rules serialize"));
    text.push('\n');
    text
}

/// `monitoring.nix`; the caller only asks when the plan is monitored.
pub fn module(monitoring: &MonitoringPlan) -> Nix {
    let address = monitoring.address.as_str();
    let mut top = Attrs::new();

    let mut prometheus = Attrs::new();
    prometheus.set("enable", true);
    prometheus.set("listenAddress", address);
    prometheus.set("port", monitoring.prometheus.port);
    prometheus.set("retentionTime", monitoring.prometheus.retention.as_str());
    let mut global = Attrs::new();
    global.set("scrape_interval", monitoring.prometheus.interval.as_str());
    global.set(
        "evaluation_interval",
        monitoring.prometheus.interval.as_str(),
    );
    prometheus.set("globalConfig", global);
    prometheus.set_with(
        "ruleFiles",
        "Generated from the spec's thresholds; checked with promtool when the system is built.",
        Nix::List(vec![Nix::path(&format!(
            "./{}",
            monitoring.prometheus.rule_file
        ))]),
    );
    prometheus.set(
        "scrapeConfigs",
        Nix::List(
            monitoring
                .scrape
                .iter()
                .map(|job| {
                    let mut config = Attrs::new();
                    config.set("job_name", job.job.as_str());
                    config.set(
                        "static_configs",
                        Nix::List(
                            job.targets
                                .iter()
                                .map(|target| {
                                    let mut s = Attrs::new();
                                    s.set("targets", vec![target.address.clone()]);
                                    if !target.labels.is_empty() {
                                        let mut labels = Attrs::new();
                                        for (k, v) in &target.labels {
                                            labels.set(k.as_str(), v.as_str());
                                        }
                                        s.set("labels", labels);
                                    }
                                    Nix::Attrs(s)
                                })
                                .collect(),
                        ),
                    );
                    Nix::Attrs(config)
                })
                .collect(),
        ),
    );
    let am = &monitoring.alertmanager;
    let mut am_target = Attrs::new();
    am_target.set("targets", vec![format!("{address}:{}", am.port)]);
    let mut am_config = Attrs::new();
    am_config.set("static_configs", Nix::List(vec![Nix::Attrs(am_target)]));
    prometheus.set("alertmanagers", Nix::List(vec![Nix::Attrs(am_config)]));

    let ex = &monitoring.exporters;
    let exporter = |port: u16| {
        let mut e = Attrs::new();
        e.set("enable", true);
        e.set("listenAddress", address);
        e.set("port", port);
        e
    };
    let mut node = exporter(ex.node_port);
    node.set("enabledCollectors", ex.node_collectors.clone());
    node.set_with(
        "extraFlags",
        "The backup and certificate units leave their timestamps here.",
        vec![format!(
            "--collector.textfile.directory={}",
            monitoring.textfile_dir
        )],
    );
    let mut postgres = exporter(ex.postgres_port);
    postgres.set_with(
        "runAsLocalSuperUser",
        "Reads pg_stat_activity and pg_settings over the Unix socket, with peer authentication.",
        true,
    );
    let mut nginx = exporter(ex.nginx_port);
    nginx.set("scrapeUri", ex.nginx_status_url.as_str());
    let kafka = exporter(ex.kafka_port);
    let mut exporters = Attrs::new();
    exporters.set("node", node);
    exporters.set("postgres", postgres);
    exporters.set("nginx", nginx);
    exporters.set_with(
        "kafka",
        "kminion: consumer group lag as the broker sees it (the services report their own too).",
        kafka,
    );
    prometheus.set("exporters", exporters);

    let mut alertmanager = Attrs::new();
    alertmanager.set("enable", true);
    alertmanager.set("listenAddress", address);
    alertmanager.set("port", am.port);
    alertmanager.set("configuration", alertmanager_configuration(monitoring));
    prometheus.set("alertmanager", alertmanager);
    top.set_path(&["services", "prometheus"], prometheus);
    top.set_path(&["services", "nginx", "statusPage"], Nix::Bool(true));

    let mut units = Attrs::new();
    if !am.credentials.is_empty() {
        units.set_path(
            &["alertmanager", "serviceConfig", "LoadCredential"],
            am.credentials
                .iter()
                .map(|c| format!("{}:{}", c.name, c.path))
                .collect::<Vec<_>>(),
        );
    }
    units.set_path(
        &[
            "prometheus-kafka-exporter",
            "environment",
            "CONFIG_FILEPATH",
        ],
        kminion_config(monitoring),
    );
    for backup in &monitoring.backups {
        units.set_path(
            &[backup.unit.as_str(), "serviceConfig", "ExecStartPost"],
            vec![record(
                &format!("teipsum-record-backup-{}", backup.database),
                &textfile_script(
                    &monitoring.textfile_dir,
                    &format!("backup-{}", backup.database),
                    &format!(
                        "printf '{}{{database=\"{}\"}} %s\\n' \"$(date +%s)\"",
                        m::BACKUP_LAST_SUCCESS,
                        backup.database
                    ),
                ),
            )],
        );
    }
    let cert = &monitoring.certificate;
    let unit = cert.unit.trim_end_matches(".service");
    units.set_path(&[unit, "path"], vec![Nix::select("pkgs.openssl")]);
    units.set_path(
        &[unit, "serviceConfig", "ExecStartPost"],
        vec![record(
            "teipsum-record-certificate",
            &textfile_script(
                &monitoring.textfile_dir,
                "certificate",
                &format!(
                    "end=\"$(openssl x509 -enddate -noout -in {} | cut -d= -f2)\"\nprintf '{}{{domain=\"{}\"}} %s\\n' \"$(date -d \"$end\" +%s)\"",
                    cert.path,
                    m::CERTIFICATE_EXPIRY,
                    cert.domain
                ),
            ),
        )],
    );
    top.set_path(&["systemd", "services"], Nix::Attrs(units));
    top.set_path(
        &["systemd", "tmpfiles", "rules"],
        vec![format!("d {} 0755 root root -", monitoring.textfile_dir)],
    );
    Nix::Attrs(top)
}

/// `"+${pkgs.writeShellScript name text}"`: run as root (`+`), after the
/// unit's main command succeeded.
fn record(name: &str, text: &str) -> Nix {
    Nix::interp(vec![
        Part::Lit("+".to_owned()),
        Part::Expr(Nix::apply(
            Nix::select("pkgs.writeShellScript"),
            vec![Nix::from(name), Nix::from(text)],
        )),
    ])
}

/// A script that writes one metric line atomically into the textfile directory.
fn textfile_script(dir: &str, file: &str, line: &str) -> String {
    format!(
        "set -eu\n{{\n{line}\n}} > {dir}/{file}.prom.tmp\nmv {dir}/{file}.prom.tmp {dir}/{file}.prom\n"
    )
}

/// kminion's configuration (JSON is YAML): the brokers, and its exporter on loopback.
fn kminion_config(monitoring: &MonitoringPlan) -> Nix {
    let ex = &monitoring.exporters;
    let mut kafka = Attrs::new();
    kafka.set("brokers", ex.kafka_brokers.clone());
    let mut exporter = Attrs::new();
    exporter.set("host", monitoring.address.as_str());
    exporter.set("port", ex.kafka_port);
    let mut groups = Attrs::new();
    groups.set("enabled", true);
    groups.set("granularity", "partition");
    let mut minion = Attrs::new();
    minion.set("consumerGroups", groups);
    let mut config = Attrs::new();
    config.set("kafka", kafka);
    config.set("exporter", exporter);
    config.set("minion", minion);
    Nix::interp(vec![Part::Expr(Nix::apply(
        Nix::select("pkgs.writeText"),
        vec![
            Nix::from("kminion.json"),
            Nix::apply(Nix::select("builtins.toJSON"), vec![Nix::Attrs(config)]),
        ],
    ))])
}

/// Alertmanager's configuration: one route to the spec's receiver.
fn alertmanager_configuration(monitoring: &MonitoringPlan) -> Nix {
    let am = &monitoring.alertmanager;
    let mut route = Attrs::new();
    route.set("receiver", am.receiver.as_str());
    route.set("group_by", am.group_by.clone());
    route.set("group_wait", am.timing[0].as_str());
    route.set("group_interval", am.timing[1].as_str());
    route.set("repeat_interval", am.timing[2].as_str());
    let mut receiver = Attrs::new();
    receiver.set("name", am.receiver.as_str());
    match &am.delivery {
        Delivery::Webhook { url_file } => {
            let mut hook = Attrs::new();
            hook.set("url_file", url_file.as_str());
            hook.set("send_resolved", true);
            receiver.set("webhook_configs", Nix::List(vec![Nix::Attrs(hook)]));
        }
        Delivery::Email {
            to,
            from,
            smarthost,
            username,
            password_file,
        } => {
            let mut mail = Attrs::new();
            mail.set("to", to.as_str());
            mail.set("from", from.as_str());
            mail.set("smarthost", smarthost.as_str());
            mail.set("require_tls", true);
            mail.set("send_resolved", true);
            if let Some(user) = username {
                mail.set("auth_username", user.as_str());
            }
            if let Some(file) = password_file {
                mail.set("auth_password_file", file.as_str());
            }
            receiver.set("email_configs", Nix::List(vec![Nix::Attrs(mail)]));
        }
    }
    let mut config = Attrs::new();
    config.set("route", route);
    config.set("receivers", Nix::List(vec![Nix::Attrs(receiver)]));
    Nix::Attrs(config)
}
