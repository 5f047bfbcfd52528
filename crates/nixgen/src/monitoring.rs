//! Plan → `monitoring.nix` and `alert-rules.json`: Prometheus, its
//! exporters, Alertmanager, the timestamps the backup and certificate
//! units leave for the node exporter, Grafana (its dashboards are
//! [`crate::dashboards`]), and the journal shipped by Vector to Loki.
//! Everything is printed from the [`MonitoringPlan`]; nothing is decided here.

use teipsum_conventions::metrics as m;
use teipsum_spec::plan::{Delivery, GrafanaPlan, LogsPlan, MonitoringPlan, UnitSetting, UnitValue};

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
/// `sandbox` is the plan's, for the one unit of TeIpsum's own here.
pub fn module(monitoring: &MonitoringPlan, sandbox: &[UnitSetting]) -> Nix {
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
    if let Some(grafana) = &monitoring.grafana {
        top.set_path(
            &["services", "grafana"],
            grafana_service(monitoring, grafana),
        );
        units.set_path(
            &["grafana", "serviceConfig", "LoadCredential"],
            grafana
                .credentials
                .iter()
                .map(|c| format!("{}:{}", c.name, c.path))
                .collect::<Vec<_>>(),
        );
        let secrets = grafana.secrets_unit.as_str();
        units.set_path(&["grafana", "wants"], vec![secrets.to_owned()]);
        units.set_path(&["grafana", "after"], vec![secrets.to_owned()]);
        units.set(
            secrets.trim_end_matches(".service"),
            grafana_secrets_unit(grafana, sandbox),
        );
    }
    if let Some(logs) = &monitoring.logs {
        top.set_path(&["services", "loki"], loki(monitoring, logs));
        top.set_path(&["services", "vector"], vector(monitoring, logs));
        units.set_path(&["vector", "wants"], vec!["loki.service".to_owned()]);
        units.set_path(&["vector", "after"], vec!["loki.service".to_owned()]);
    }
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

/// `services.grafana`: on loopback, its secrets from credentials (Grafana's
/// `$__file{}` provider), the datasources and the dashboard directory
/// provisioned read-only.
fn grafana_service(monitoring: &MonitoringPlan, grafana: &GrafanaPlan) -> Nix {
    let file = |path: &str| format!("$__file{{{path}}}");
    let mut settings = Attrs::new();
    settings.set_path(&["server", "http_addr"], monitoring.address.as_str());
    settings.set_path(&["server", "http_port"], grafana.port);
    settings.set_path(&["security", "secret_key"], file(&grafana.secret_key_file));
    settings.set_path(
        &["security", "admin_password"],
        file(&grafana.admin_password_file),
    );
    settings.set_path(&["security", "disable_gravatar"], true);
    settings.set_path(&["users", "allow_sign_up"], false);
    settings.set_path(&["analytics", "reporting_enabled"], false);
    settings.set_path(&["analytics", "check_for_updates"], false);
    settings.set_path(&["analytics", "check_for_plugin_updates"], false);
    let datasources: Vec<Nix> = grafana
        .datasources
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let mut source = Attrs::new();
            source.set("name", d.name.as_str());
            source.set("uid", d.uid.as_str());
            source.set("type", d.kind.as_str());
            source.set("url", d.url.as_str());
            source.set("isDefault", n == 0);
            Nix::Attrs(source)
        })
        .collect();
    let mut provider = Attrs::new();
    provider.set("name", "teipsum");
    provider.set("type", "file");
    provider.set("disableDeletion", true);
    provider.set("allowUiUpdates", false);
    provider.set_path(
        &["options", "path"],
        Nix::path(&format!("./{}", grafana.dashboard_dir)),
    );
    let mut service = Attrs::new();
    service.set("enable", true);
    service.set("settings", settings);
    service.set_path(&["provision", "enable"], true);
    service.set_path(
        &["provision", "datasources", "settings", "datasources"],
        Nix::List(datasources),
    );
    service.set_path(
        &["provision", "dashboards", "settings", "providers"],
        Nix::List(vec![Nix::Attrs(provider)]),
    );
    Nix::Attrs(service)
}

/// `services.loki`: one process, its index and chunks on the local disk,
/// lines older than the retention deleted by the compactor.
fn loki(monitoring: &MonitoringPlan, logs: &LogsPlan) -> Nix {
    let address = monitoring.address.as_str();
    let dir = "/var/lib/loki";
    let mut config = Attrs::new();
    config.set("auth_enabled", false);
    config.set_path(&["server", "http_listen_address"], address);
    config.set_path(&["server", "http_listen_port"], logs.port);
    config.set_path(&["server", "grpc_listen_address"], address);
    config.set_path(&["server", "grpc_listen_port"], logs.grpc_port);
    config.set_path(&["common", "instance_addr"], address);
    config.set_path(&["common", "path_prefix"], dir);
    config.set_path(&["common", "replication_factor"], 1u16);
    config.set_path(&["common", "ring", "kvstore", "store"], "inmemory");
    config.set_path(
        &["common", "storage", "filesystem", "chunks_directory"],
        format!("{dir}/chunks"),
    );
    config.set_path(
        &["common", "storage", "filesystem", "rules_directory"],
        format!("{dir}/rules"),
    );
    let mut schema = Attrs::new();
    schema.set("from", "2026-01-01");
    schema.set("store", "tsdb");
    schema.set("object_store", "filesystem");
    schema.set("schema", "v13");
    schema.set_path(&["index", "prefix"], "index_");
    schema.set_path(&["index", "period"], "24h");
    config.set_path(
        &["schema_config", "configs"],
        Nix::List(vec![Nix::Attrs(schema)]),
    );
    config.set_path(
        &["limits_config", "retention_period"],
        logs.retention.as_str(),
    );
    config.set_path(
        &["compactor", "working_directory"],
        format!("{dir}/compactor"),
    );
    config.set_path(&["compactor", "retention_enabled"], true);
    config.set_path(&["compactor", "delete_request_store"], "filesystem");
    config.set_path(&["analytics", "reporting_enabled"], false);
    let mut service = Attrs::new();
    service.set("enable", true);
    service.set("configuration", config);
    Nix::Attrs(service)
}

/// `services.vector`: the platform's units from the journal, each line cut
/// down to its message and the fields of the Plan, pushed to Loki.
fn vector(monitoring: &MonitoringPlan, logs: &LogsPlan) -> Nix {
    let mut journald = Attrs::new();
    journald.set("type", "journald");
    journald.set("include_units", logs.units.clone());
    let mut fields = vec!["\"message\": .message".to_owned()];
    fields.extend(
        logs.fields
            .iter()
            .map(|f| format!("\"{}\": .\"{}\"", f.name, f.journal)),
    );
    fields.push("\"timestamp\": .timestamp".to_owned());
    let mut remap = Attrs::new();
    remap.set("type", "remap");
    remap.set("inputs", vec!["journal".to_owned()]);
    remap.set(
        "source",
        format!(
            "# Only what a reader needs; absent fields are dropped.\n. = compact({{\n  {}\n}})\n",
            fields.join(",\n  ")
        ),
    );
    let mut labels = Attrs::new();
    for (name, value) in &logs.stream {
        labels.set(name.as_str(), value.as_str());
    }
    let mut loki = Attrs::new();
    loki.set("type", "loki");
    loki.set("inputs", vec!["fields".to_owned()]);
    loki.set(
        "endpoint",
        format!("http://{}:{}", monitoring.address, logs.port),
    );
    loki.set_path(&["encoding", "codec"], "json");
    loki.set("labels", labels);
    let mut settings = Attrs::new();
    settings.set("data_dir", "/var/lib/vector");
    settings.set_path(&["api", "enabled"], false);
    settings.set_path(&["sources", "journal"], journald);
    settings.set_path(&["transforms", "fields"], remap);
    settings.set_path(&["sinks", "loki"], loki);
    let mut service = Attrs::new();
    service.set("enable", true);
    service.set("journaldAccess", true);
    service.set("settings", settings);
    Nix::Attrs(service)
}

/// The oneshot that creates Grafana's missing credential files (32 random
/// bytes, base64, no newline), readable by root only, as sshd makes its
/// host keys; files that exist are never touched.
fn grafana_secrets_unit(grafana: &GrafanaPlan, sandbox: &[UnitSetting]) -> Nix {
    let mut script = String::from("set -eu\n");
    for credential in &grafana.credentials {
        let path = &credential.path;
        script.push_str(&format!(
            "if [ ! -e {path} ]; then\n  head -c 32 /dev/urandom | base64 -w0 > {path}.tmp\n  mv {path}.tmp {path}\nfi\n"
        ));
    }
    let mut unit = Attrs::new();
    unit.set(
        "description",
        "Create Grafana's secret key and admin password when missing",
    );
    unit.set("path", vec![Nix::select("pkgs.coreutils")]);
    // The directory is the signing key's (nix/modules/jwt-key.nix makes it).
    unit.set("after", vec!["systemd-tmpfiles-setup.service".to_owned()]);
    unit.set_path(
        &["unitConfig", "ConditionPathExists"],
        grafana
            .credentials
            .iter()
            .map(|c| format!("|!{}", c.path))
            .collect::<Vec<_>>(),
    );
    // The services' sandbox, but root may write the secrets directory
    // (0700, another owner) and reaches no network at all.
    let mut config = Attrs::new();
    for setting in sandbox {
        let value = match (setting.name.as_str(), &setting.value) {
            ("PrivateUsers", _) => Nix::Bool(false),
            ("CapabilityBoundingSet", _) => Nix::from(vec!["CAP_DAC_OVERRIDE".to_owned()]),
            ("RestrictAddressFamilies", _) => Nix::from(vec!["none".to_owned()]),
            ("IPAddressAllow", _) => continue,
            (_, UnitValue::Bool(b)) => Nix::Bool(*b),
            (_, UnitValue::Str(text)) => Nix::from(text.as_str()),
            (_, UnitValue::List(items)) => Nix::from(items.clone()),
        };
        config.set(setting.name.as_str(), value);
    }
    config.set("PrivateNetwork", true);
    let mut dirs: Vec<String> = grafana
        .credentials
        .iter()
        .filter_map(|c| {
            std::path::Path::new(&c.path)
                .parent()
                .map(|p| p.display().to_string())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    config.set("ReadWritePaths", dirs);
    config.set("Type", "oneshot");
    config.set("RemainAfterExit", true);
    config.set("UMask", "0077");
    unit.set("serviceConfig", config);
    unit.set_path(
        &["serviceConfig", "ExecStart"],
        Nix::interp(vec![Part::Expr(Nix::apply(
            Nix::select("pkgs.writeShellScript"),
            vec![Nix::from("teipsum-grafana-secrets"), Nix::from(script)],
        ))]),
    );
    Nix::Attrs(unit)
}
