//! Monitoring in `teipsum dev`: Prometheus, Alertmanager and the exporters
//! from Debian's packages, configured from the same [`MonitoringPlan`] as
//! the NixOS module, when Prometheus is installed.
//!
//! What differs from a host, and why:
//! * every component listens where the stack put it (the plan's ports, or
//!   free ones with `free_ports`), its data under the state directory;
//! * the PostgreSQL exporter reads the dev cluster's socket, the nginx
//!   exporter the dev edge's status page, the node exporter has no systemd
//!   collector (no systemd here) and no dump or certificate timestamps;
//!   kminion is not packaged by Debian, so the `kafka` job is left out (the
//!   services report their own lag);
//! * Alertmanager 0.25 has no `url_file`: the webhook URL is written into
//!   its configuration, a file only the state directory's owner reads;
//! * the rules that read what a development machine cannot have (the
//!   systemd collector's unit states, the dumps' and the certificate's
//!   timestamps) are left out, and said so, rather than firing after an
//!   hour ([`RULES_LEFT_OUT`]);
//! * [`MonitoringOptions::interval`] and [`MonitoringOptions::quick`] may
//!   shorten the scrape interval and Alertmanager's grouping waits; the
//!   other rules and their `for` holds are the generated ones
//!   ([`teipsum_nixgen::monitoring::rules_json`]).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use teipsum_conventions::metrics as m;
use teipsum_spec::plan::MonitoringPlan;
use teipsum_testkit::{Postgres, http_status, which};

use crate::{DevError, step};

/// Metrics no development stack has, and why: a rule that reads one is
/// left out of `teipsum dev`'s Prometheus (promtool's tests cover them).
pub const RULES_LEFT_OUT: [(&str, &str); 3] = [
    (
        "node_systemd_unit_state",
        "no systemd here: the node exporter runs without its systemd collector",
    ),
    (m::BACKUP_LAST_SUCCESS, "teipsum dev takes no nightly dumps"),
    (
        m::CERTIFICATE_EXPIRY,
        "teipsum dev serves a development certificate, not an ACME one",
    ),
];

/// How `teipsum dev` monitors the stack.
#[derive(Debug, Clone, Default)]
pub struct MonitoringOptions {
    /// Run nothing of it, even when Prometheus is installed.
    pub disable: bool,
    /// Where Alertmanager posts alerts; none: they are dropped.
    pub webhook: Option<String>,
    /// Scrape and evaluation interval instead of the plan's (`1s`).
    pub interval: Option<String>,
    /// Alertmanager sends at once (`group_wait` 1s) instead of the plan's waits.
    pub quick: bool,
}

/// The monitoring processes of a running stack.
pub struct Monitoring {
    /// `http://127.0.0.1:<port>` of Prometheus.
    pub prometheus_url: String,
    /// `http://127.0.0.1:<port>` of Alertmanager.
    pub alertmanager_url: String,
    /// The scrape jobs left out, each with why.
    pub left_out: Vec<(String, &'static str)>,
    /// The alert rules left out ([`RULES_LEFT_OUT`]), each with why.
    pub rules_left_out: Vec<(String, &'static str)>,
    children: Vec<(&'static str, Child)>,
}

impl Monitoring {
    /// Stop every process.
    pub fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The ports of the monitoring components in this run.
#[derive(Debug, Clone, Copy)]
pub struct MonitoringPorts {
    /// Prometheus.
    pub prometheus: u16,
    /// Alertmanager.
    pub alertmanager: u16,
    /// The node exporter.
    pub node: u16,
    /// The PostgreSQL exporter.
    pub postgres: u16,
    /// The nginx exporter.
    pub nginx: u16,
}

impl MonitoringPorts {
    /// The plan's own ports.
    pub fn of(plan: &MonitoringPlan) -> MonitoringPorts {
        MonitoringPorts {
            prometheus: plan.prometheus.port,
            alertmanager: plan.alertmanager.port,
            node: plan.exporters.node_port,
            postgres: plan.exporters.postgres_port,
            nginx: plan.exporters.nginx_port,
        }
    }
}

/// A Debian program of the monitoring stack, when installed.
fn program(name: &str) -> Option<PathBuf> {
    which(name).or_else(|| Some(Path::new("/usr/bin").join(name)).filter(|p| p.is_file()))
}

/// Whether Prometheus is installed (Debian's `prometheus`).
pub fn available() -> bool {
    program("prometheus").is_some()
}

/// Where things of this run are.
pub(crate) struct Site<'a> {
    pub root: &'a Path,
    pub postgres: &'a Postgres,
    /// `http://127.0.0.1:<port>/nginx_status`.
    pub nginx_status: &'a str,
}

/// A Debian exporter: its program, the port the plan gives it, the port it
/// listens on in this run, its arguments and environment.
struct Exporter {
    name: &'static str,
    plan_port: u16,
    port: u16,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// Start the exporters, Alertmanager and Prometheus; wait until Prometheus
/// and Alertmanager are ready.
pub(crate) fn start(
    plan: &MonitoringPlan,
    ports: MonitoringPorts,
    options: &MonitoringOptions,
    site: &Site<'_>,
) -> Result<Monitoring, DevError> {
    let dir = site.root.join("monitoring");
    make_dir(&dir)?;
    let local = |port: u16| format!("127.0.0.1:{port}");
    let planned = |port: u16| format!("{}:{port}", plan.address);
    let mut children = Vec::new();
    let mut left_out = Vec::new();
    // The plan's exporter addresses → this run's, or None: left out.
    let mut moved: BTreeMap<String, Option<String>> = BTreeMap::new();
    let ex = &plan.exporters;
    let textfile = dir.join("textfile");
    make_dir(&textfile)?;
    let socket = site.postgres.socket_dir.display().to_string();
    let dsn = format!(
        "host={socket} port={} user=postgres dbname=postgres sslmode=disable",
        site.postgres.port
    );
    let exporters = [
        Exporter {
            name: "prometheus-node-exporter",
            plan_port: ex.node_port,
            port: ports.node,
            args: vec![
                format!("--web.listen-address={}", local(ports.node)),
                format!("--collector.textfile.directory={}", textfile.display()),
            ],
            env: vec![],
        },
        Exporter {
            name: "prometheus-postgres-exporter",
            plan_port: ex.postgres_port,
            port: ports.postgres,
            args: vec![format!("--web.listen-address={}", local(ports.postgres))],
            env: vec![("DATA_SOURCE_NAME", dsn)],
        },
        Exporter {
            name: "prometheus-nginx-exporter",
            plan_port: ex.nginx_port,
            port: ports.nginx,
            args: vec![
                format!("-nginx.scrape-uri={}", site.nginx_status),
                format!("-web.listen-address={}", local(ports.nginx)),
            ],
            env: vec![],
        },
    ];
    for Exporter {
        name,
        plan_port,
        port,
        args,
        env,
    } in exporters
    {
        let Some(path) = program(name) else {
            moved.insert(planned(plan_port), None);
            left_out.push((
                name.to_owned(),
                "not installed (scripts/setup.sh installs it)",
            ));
            continue;
        };
        let mut command = Command::new(&path);
        command.args(&args).envs(env);
        children.push((name, spawn(command, &dir, name)?));
        moved.insert(planned(plan_port), Some(local(port)));
    }
    moved.insert(planned(ex.kafka_port), None);
    left_out.push((
        "kafka (kminion)".to_owned(),
        "Debian has no kminion; the services report their own consumer lag",
    ));
    moved.insert(planned(plan.prometheus.port), Some(local(ports.prometheus)));
    moved.insert(
        planned(plan.alertmanager.port),
        Some(local(ports.alertmanager)),
    );

    let alertmanager = program("prometheus-alertmanager").ok_or_else(|| DevError::Missing {
        program: "prometheus-alertmanager".to_owned(),
        hint: "apt-get install prometheus-alertmanager (scripts/setup.sh does)".to_owned(),
    })?;
    let am_config = dir.join("alertmanager.yml");
    write_private(&am_config, &alertmanager_config(plan, options))?;
    let mut command = Command::new(&alertmanager);
    command
        .arg(format!("--config.file={}", am_config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.join("alertmanager").display()
        ))
        .arg(format!(
            "--web.listen-address={}",
            local(ports.alertmanager)
        ))
        // No gossip: one instance, and 9094 may be taken.
        .arg("--cluster.listen-address=");
    children.push(("alertmanager", spawn(command, &dir, "alertmanager")?));

    let prometheus = program("prometheus").ok_or_else(|| DevError::Missing {
        program: "prometheus".to_owned(),
        hint: "apt-get install prometheus (scripts/setup.sh does)".to_owned(),
    })?;
    let (kept, rules_left_out) = rules_for_dev(plan);
    let rules = dir.join(&plan.prometheus.rule_file);
    write_private(
        &rules,
        &teipsum_nixgen::monitoring::rules_json(&kept, "generated by teipsum dev from the plan"),
    )?;
    let config = dir.join("prometheus.yml");
    write_private(
        &config,
        &prometheus_config(plan, options, &moved, &local(ports.alertmanager)),
    )?;
    let mut command = Command::new(&prometheus);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus").display()
        ))
        .arg(format!("--web.listen-address={}", local(ports.prometheus)));
    children.push(("prometheus", spawn(command, &dir, "prometheus")?));

    let mut monitoring = Monitoring {
        prometheus_url: format!("http://{}", local(ports.prometheus)),
        alertmanager_url: format!("http://{}", local(ports.alertmanager)),
        left_out,
        rules_left_out,
        children,
    };
    for (what, port) in [
        ("Alertmanager", ports.alertmanager),
        ("Prometheus", ports.prometheus),
    ] {
        wait_ready(&mut monitoring, what, port)?;
    }
    step(&format!("Prometheus on {}", monitoring.prometheus_url));
    for (job, why) in &monitoring.left_out {
        step(&format!("monitoring: no {job}: {why}"));
    }
    for (rule, why) in &monitoring.rules_left_out {
        step(&format!("monitoring: no rule {rule}: {why}"));
    }
    Ok(monitoring)
}

/// The plan's rules without those reading a metric of [`RULES_LEFT_OUT`],
/// and the names of those left out with why.
fn rules_for_dev(plan: &MonitoringPlan) -> (MonitoringPlan, Vec<(String, &'static str)>) {
    let mut kept = plan.clone();
    let mut left_out = Vec::new();
    for group in &mut kept.rules {
        group.rules.retain(|rule| {
            match RULES_LEFT_OUT
                .iter()
                .find(|(metric, _)| rule.expr.contains(metric))
            {
                Some((_, why)) => {
                    left_out.push((rule.alert.clone(), *why));
                    false
                }
                None => true,
            }
        });
    }
    (kept, left_out)
}

/// `prometheus.yml` (JSON is YAML): the plan's jobs with this run's
/// addresses, those left out dropped.
fn prometheus_config(
    plan: &MonitoringPlan,
    options: &MonitoringOptions,
    moved: &BTreeMap<String, Option<String>>,
    alertmanager: &str,
) -> String {
    let interval = options
        .interval
        .clone()
        .unwrap_or_else(|| plan.prometheus.interval.clone());
    let jobs: Vec<serde_json::Value> = plan
        .scrape
        .iter()
        .filter_map(|job| {
            let targets: Vec<serde_json::Value> = job
                .targets
                .iter()
                .filter_map(|t| {
                    let address = match moved.get(&t.address) {
                        Some(Some(address)) => address.clone(),
                        Some(None) => return None,
                        None => t.address.clone(),
                    };
                    Some(json!({ "targets": [address], "labels": t.labels }))
                })
                .collect();
            (!targets.is_empty()).then(|| json!({ "job_name": job.job, "static_configs": targets }))
        })
        .collect();
    let config = json!({
        "global": { "scrape_interval": interval, "evaluation_interval": interval },
        "rule_files": [plan.prometheus.rule_file],
        "alerting": { "alertmanagers": [{ "static_configs": [{ "targets": [alertmanager] }] }] },
        "scrape_configs": jobs,
    });
    serde_json::to_string_pretty(&config).expect("configs serialize")
}

/// `alertmanager.yml`: the plan's route, to the webhook given or to nobody.
fn alertmanager_config(plan: &MonitoringPlan, options: &MonitoringOptions) -> String {
    let am = &plan.alertmanager;
    let timing: [&str; 3] = if options.quick {
        ["1s", "1s", am.timing[2].as_str()]
    } else {
        [
            am.timing[0].as_str(),
            am.timing[1].as_str(),
            am.timing[2].as_str(),
        ]
    };
    let mut receiver = json!({ "name": am.receiver });
    if let Some(url) = &options.webhook {
        receiver["webhook_configs"] = json!([{ "url": url, "send_resolved": true }]);
    }
    // The host's delivery (e-mail, the webhook's URL file) stays the
    // host's: a development machine posts only where it is told.
    let config = json!({
        "route": {
            "receiver": am.receiver,
            "group_by": am.group_by,
            "group_wait": timing[0],
            "group_interval": timing[1],
            "repeat_interval": timing[2],
        },
        "receivers": [receiver],
    });
    serde_json::to_string_pretty(&config).expect("configs serialize")
}

fn make_dir(dir: &Path) -> Result<(), DevError> {
    std::fs::create_dir_all(dir).map_err(|source| DevError::MonitoringFile {
        path: dir.to_owned(),
        source,
    })
}

/// Write `text` to `path`, readable by its owner only (the webhook URL may
/// carry a token).
fn write_private(path: &Path, text: &str) -> Result<(), DevError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| DevError::MonitoringFile {
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)
}

/// Start `command` with its output in `<dir>/<name>.log`.
fn spawn(mut command: Command, dir: &Path, name: &str) -> Result<Child, DevError> {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).map_err(|source| DevError::MonitoringFile {
        path: log_path.clone(),
        source,
    })?;
    let err = log.try_clone().map_err(|source| DevError::MonitoringFile {
        path: log_path.clone(),
        source,
    })?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|source| DevError::MonitoringSpawn {
            program: name.to_owned(),
            source,
        })
}

/// Wait until `/-/ready` answers 200 (30 s); a process that exits is an error.
fn wait_ready(monitoring: &mut Monitoring, what: &str, port: u16) -> Result<(), DevError> {
    let patience = Duration::from_secs(30);
    let started = Instant::now();
    while http_status(port, "/-/ready") != Some(200) {
        for (name, child) in &mut monitoring.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DevError::MonitoringExited {
                    program: (*name).to_owned(),
                    status,
                });
            }
        }
        if started.elapsed() > patience {
            return Err(DevError::MonitoringNotReady {
                what: what.to_owned(),
                port,
                waited: patience,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
