//! `teipsum status`: the seed's health and monitoring commands in one
//! place, read from the host's own components as the plan names them.
//!
//! | section | read from | a problem when |
//! |---|---|---|
//! | units | `systemctl show` | a unit failed, or a long-running one is not active |
//! | services | `GET /readyz` on each service's address | not 200 |
//! | databases | `pg_stat_activity`, `pg_database_size`, each service's `kit_outbox` and `kit_parked_events` (psql as `postgres`) | connections above 80 % of `max_connections`, an event parked |
//! | consumer groups | the broker: committed offsets and high watermarks | — (shown; the alerts judge a trend) |
//! | backups | the dumps' files in the backup directory | missing, or older than `monitoring.alerts.backup_max_age` |
//! | certificate | the expiry the certificate unit records for the node exporter | within `monitoring.alerts.certificate_expiry` |
//!
//! Each reading that fails is reported as such (`error`) and the others go
//! on: a status command is most needed when something is down.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use teipsum_kit::kafka::GroupLag;
use teipsum_spec::{
    Plan,
    plan::{KafkaMode, ServicePlan},
};

use crate::restore::Superuser;

/// How long one reading may take.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The state of a unit, as `systemctl show` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    /// `ActiveState` (`active`, `inactive`, `failed`, ...).
    pub active: String,
    /// `SubState` (`running`, `exited`, `dead`, ...).
    pub sub: String,
    /// Whether it is a oneshot (inactive after success is its rest state).
    pub oneshot: bool,
}

/// Where the units' states come from: systemd on a host.
pub trait UnitStates {
    /// The state of `unit`, or why it cannot be read.
    fn state(&self, unit: &str) -> Result<UnitState, String>;
}

/// A host's units, through `systemctl show`.
#[derive(Debug, Default)]
pub struct Systemd;

impl UnitStates for Systemd {
    fn state(&self, unit: &str) -> Result<UnitState, String> {
        let out = Command::new("systemctl")
            .args(["show", "--property=ActiveState,SubState,Type", "--", unit])
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// `systemctl show`'s `Key=value` lines.
fn parse_show(text: &str) -> UnitState {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .to_owned()
    };
    UnitState {
        active: value("ActiveState"),
        sub: value("SubState"),
        oneshot: value("Type") == "oneshot",
    }
}

/// Where a host keeps what `status` reads.
pub struct Site<'a> {
    /// The units' states; `None` where there is no systemd (`teipsum dev`).
    pub units: Option<&'a dyn UnitStates>,
    /// The database superuser.
    pub superuser: Superuser,
    /// The broker's bootstrap servers.
    pub brokers: String,
    /// The directory of the nightly dumps; `None` where none are taken.
    pub backup_dir: Option<PathBuf>,
    /// The node exporter's textfile directory, where the certificate's
    /// expiry is recorded; `None` without monitoring.
    pub textfile_dir: Option<PathBuf>,
}

impl Site<'_> {
    /// A host's, as the plan deploys it.
    pub fn of_host(plan: &Plan) -> Site<'static> {
        Site {
            units: Some(&Systemd),
            superuser: Superuser::of_host(plan),
            brokers: plan.kafka.bootstrap.clone(),
            backup_dir: Some(PathBuf::from(&plan.postgres.backup.location)),
            textfile_dir: plan
                .monitoring
                .as_ref()
                .map(|m| PathBuf::from(&m.textfile_dir)),
        }
    }
}

/// A running `teipsum dev`, as its `stack.json` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DevStack {
    /// The plan it runs, its ports where this run put them.
    pub plan: Plan,
    /// Its PostgreSQL cluster.
    pub postgres: DevPostgres,
    /// The broker's bootstrap address.
    pub bootstrap: String,
}

/// The dev cluster's socket.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DevPostgres {
    /// Directory of its socket.
    pub socket_dir: PathBuf,
    /// Its port.
    pub port: u16,
}

impl DevStack {
    /// `<state>/stack.json`.
    pub fn read(state: &Path) -> Result<DevStack, String> {
        let path = state.join("stack.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (is teipsum dev running with this state directory?)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Where its parts are: psql as the OS user (whom the cluster maps to
    /// `postgres`), no systemd, no dumps, no certificate record.
    pub fn site(&self) -> Site<'static> {
        Site {
            units: None,
            superuser: Superuser {
                psql: PathBuf::from("psql"),
                socket_dir: self.postgres.socket_dir.clone(),
                port: self.postgres.port,
                role: "postgres".to_owned(),
                run_as: None,
            },
            brokers: self.bootstrap.clone(),
            backup_dir: None,
            textfile_dir: None,
        }
    }
}

/// Everything `status` read.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The environment.
    pub environment: String,
    /// Unix time of the reading.
    pub at: u64,
    /// The platform's units.
    pub units: Vec<UnitRow>,
    /// Each service's readiness.
    pub services: Vec<ServiceRow>,
    /// `max_connections` and the connections in use, or why unknown.
    pub connections: Reading<(i64, i64)>,
    /// Each database of the plan.
    pub databases: Vec<DatabaseRow>,
    /// Each consumer group on each topic it reads, or why unknown.
    pub consumer_groups: Reading<Vec<GroupLag>>,
    /// Each database's last dump.
    pub backups: Vec<BackupRow>,
    /// The edge's certificate.
    pub certificate: CertificateRow,
    /// What is wrong, one line each; empty when all is well.
    pub problems: Vec<String>,
}

/// A value, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reading<T> {
    /// Read.
    Ok(T),
    /// Could not be read.
    Error(String),
}

/// One unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    /// Its name.
    pub unit: String,
    /// Its state.
    pub state: Reading<UnitState>,
}

/// One service's readiness.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    /// The service.
    pub service: String,
    /// `address:port`.
    pub address: String,
    /// The status code of `/readyz`, or why there is none.
    pub ready: Reading<u16>,
}

/// One database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseRow {
    /// Its name.
    pub database: String,
    /// The service that owns it.
    pub service: String,
    /// Connections to it now.
    pub connections: Reading<i64>,
    /// Its size in bytes.
    pub size_bytes: Reading<i64>,
    /// Events waiting in its outbox, and the age of the oldest in seconds.
    pub outbox: Reading<(i64, i64)>,
    /// Events its consumer parked.
    pub parked: Reading<i64>,
}

/// One database's last dump.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRow {
    /// The database.
    pub database: String,
    /// The dump's file.
    pub file: String,
    /// Seconds since it was written, or why unknown.
    pub age_secs: Reading<u64>,
}

/// The edge's certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateRow {
    /// Its domain.
    pub domain: String,
    /// Seconds until it expires, or why unknown.
    pub expires_in_secs: Reading<i64>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The units `status` shows: the platform's, and the monitoring's when on.
pub fn units(plan: &Plan) -> Vec<String> {
    let mut units: Vec<String> = plan.services.iter().map(|s| s.unit.clone()).collect();
    units.extend(
        [
            "postgresql.service",
            "apache-kafka.service",
            plan.kafka.topics_unit.unit.as_str(),
            "nginx.service",
        ]
        .map(str::to_owned),
    );
    if matches!(plan.kafka.mode, KafkaMode::Zookeeper { .. }) {
        units.push("zookeeper.service".to_owned());
    }
    if let Some(m) = &plan.monitoring {
        units.extend(teipsum_nixgen::diff::MONITORING_UNITS.map(str::to_owned));
        if m.grafana.is_some() {
            units.push("grafana.service".to_owned());
        }
        if m.logs.is_some() {
            units.extend(["loki.service", "vector.service"].map(str::to_owned));
        }
    }
    units
}

/// `GET /readyz` on `address`, the status code.
fn readiness(address: &str) -> Result<u16, String> {
    let socket = address
        .parse::<std::net::SocketAddr>()
        .map_err(|e| format!("{address}: {e}"))?;
    let mut stream =
        TcpStream::connect_timeout(&socket, READ_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|()| {
            write!(
                stream,
                "GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
            )
        })
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| "not an HTTP answer".to_owned())
}

fn reading<T>(result: Result<T, String>) -> Reading<T> {
    match result {
        Ok(value) => Reading::Ok(value),
        Err(why) => Reading::Error(why),
    }
}

/// One number from psql's unaligned output.
fn number(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("unexpected answer {text:?}"))
}

/// The file name nixpkgs' backup module gives a database's dump.
fn dump_file(plan: &Plan, dir: &Path, database: &str) -> PathBuf {
    let suffix = match plan.postgres.backup.compression.as_str() {
        "zstd" => ".zstd",
        "gzip" => ".gz",
        _ => "",
    };
    dir.join(format!("{database}.sql{suffix}"))
}

/// The certificate's expiry (Unix time) from the textfile the certificate
/// unit writes (`<domain>` label, one value).
fn recorded_expiry(dir: &Path, domain: &str) -> Result<i64, String> {
    let path = dir.join("certificate.prom");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let wanted = format!(
        "{}{{domain=\"{domain}\"}} ",
        teipsum_conventions::metrics::CERTIFICATE_EXPIRY
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .ok_or_else(|| format!("{}: no expiry of {domain}", path.display()))
        .and_then(number)
}

/// Read everything; never fails as a whole.
pub async fn read(plan: &Plan, site: &Site<'_>) -> Status {
    let at = now();
    let mut problems = Vec::new();

    // No systemd (teipsum dev): no units to read.
    let units: Vec<UnitRow> = match site.units {
        None => Vec::new(),
        Some(states) => units(plan)
            .into_iter()
            .map(|unit| {
                let state = states.state(&unit);
                match &state {
                    Ok(s) if s.active == "failed" => problems.push(format!("{unit} failed")),
                    Ok(s) if !s.oneshot && s.active != "active" => {
                        problems.push(format!("{unit} is {} ({})", s.active, s.sub))
                    }
                    Ok(_) => {}
                    Err(why) => problems.push(format!("{unit}: {why}")),
                }
                UnitRow {
                    unit,
                    state: reading(state),
                }
            })
            .collect(),
    };

    let services: Vec<ServiceRow> = plan
        .services
        .iter()
        .map(|s: &ServicePlan| {
            let address = format!("{}:{}", s.address, s.port);
            let ready = readiness(&address);
            match &ready {
                Ok(200) => {}
                Ok(code) => problems.push(format!("{} is not ready (/readyz {code})", s.name)),
                Err(why) => problems.push(format!("{} does not answer: {why}", s.name)),
            }
            ServiceRow {
                service: s.name.clone(),
                address,
                ready: reading(ready),
            }
        })
        .collect();

    let su = &site.superuser;
    // psql's own message, first line: what a reader of the status needs.
    let sql = |database: &str, query: &str| {
        su.run(database, query, true).map_err(|e| match e {
            crate::restore::RestoreError::Psql { message, .. } => {
                message.lines().next().unwrap_or("psql failed").to_owned()
            }
            other => other.to_string(),
        })
    };
    let connections = sql(
        "postgres",
        "SELECT current_setting('max_connections') || ' ' || (SELECT count(*) FROM pg_stat_activity)",
    )
    .and_then(|line| match line.split_once(' ') {
        Some((max, used)) => Ok((number(max)?, number(used)?)),
        None => Err(format!("unexpected answer {line:?}")),
    });
    match &connections {
        Ok((max, used)) if *used * 10 > *max * 8 => problems.push(format!(
            "PostgreSQL: {used} of max_connections {max} in use"
        )),
        Ok(_) => {}
        Err(why) => problems.push(format!("PostgreSQL: {why}")),
    }
    let databases: Vec<DatabaseRow> = plan
        .postgres
        .databases
        .iter()
        .map(|db| {
            let name = db.name.replace('\'', "''");
            let row = DatabaseRow {
                database: db.name.clone(),
                service: db.service.clone(),
                connections: reading(
                    sql(
                        "postgres",
                        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"),
                    )
                    .and_then(|n| number(&n)),
                ),
                size_bytes: reading(
                    sql("postgres", &format!("SELECT pg_database_size('{name}')"))
                        .and_then(|n| number(&n)),
                ),
                outbox: reading(
                    sql(
                        &db.name,
                        "SELECT count(*) || ' ' || coalesce(extract(epoch FROM now() - min(created_at))::bigint, 0) \
                         FROM kit_outbox WHERE sent_at IS NULL",
                    )
                    .and_then(|line| match line.split_once(' ') {
                        Some((n, age)) => Ok((number(n)?, number(age)?)),
                        None => Err(format!("unexpected answer {line:?}")),
                    }),
                ),
                parked: reading(
                    sql(&db.name, "SELECT count(*) FROM kit_parked_events").and_then(|n| number(&n)),
                ),
            };
            if let Reading::Ok(n) = row.parked
                && n > 0
            {
                problems.push(format!(
                    "{}: {n} parked event(s); teipsum-{} events parked shows why",
                    db.service, db.service
                ));
            }
            row
        })
        .collect();

    let groups: Vec<(String, Vec<String>)> = plan
        .services
        .iter()
        .filter_map(|s| Some((s.consumer_group.clone()?, s.consumes.clone())))
        .filter(|(_, topics)| !topics.is_empty())
        .collect();
    let consumer_groups =
        match teipsum_kit::kafka::group_lags(&site.brokers, &groups, READ_TIMEOUT).await {
            Ok(lags) => Reading::Ok(lags),
            Err(e) => {
                problems.push(format!("the broker: {e}"));
                Reading::Error(e.to_string())
            }
        };

    let max_age = |database: &str| {
        plan.monitoring
            .as_ref()?
            .backups
            .iter()
            .find(|b| b.database == database)
            .map(|b| b.max_age_secs)
    };
    let backup_dir = site.backup_dir.as_deref();
    let backups: Vec<BackupRow> = plan
        .postgres
        .backup
        .databases
        .iter()
        .filter(|_| backup_dir.is_some())
        .map(|database| {
            let file = dump_file(plan, backup_dir.unwrap_or(Path::new("")), database);
            let age = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .map_err(|e| format!("{}: {e}", file.display()))
                .map(|modified| {
                    at.saturating_sub(
                        modified
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                    )
                });
            match (&age, max_age(database)) {
                (Ok(age), Some(max)) if *age > max => problems.push(format!(
                    "the last dump of {database} is {} h old",
                    age / 3600
                )),
                (Err(why), _) => problems.push(format!("no dump of {database}: {why}")),
                _ => {}
            }
            BackupRow {
                database: database.clone(),
                file: file.display().to_string(),
                age_secs: reading(age),
            }
        })
        .collect();

    let domain = plan.domain.clone();
    let expires_in = match &site.textfile_dir {
        Some(dir) => recorded_expiry(dir, &domain).map(|t| t - at as i64),
        None => Err("not recorded without monitoring".to_owned()),
    };
    // Judged only where it is recorded (a monitored host).
    let warn = plan
        .monitoring
        .as_ref()
        .map(|m| m.certificate.warn_secs)
        .filter(|_| site.textfile_dir.is_some());
    match (&expires_in, warn) {
        (Ok(left), Some(warn)) if *left < warn as i64 => problems.push(format!(
            "the certificate of {domain} expires in {} days",
            left / 86_400
        )),
        (Err(why), Some(_)) => problems.push(format!("the certificate of {domain}: {why}")),
        _ => {}
    }

    Status {
        environment: plan.environment.clone(),
        at,
        units,
        services,
        connections: reading(connections),
        databases,
        consumer_groups,
        backups,
        certificate: CertificateRow {
            domain,
            expires_in_secs: reading(expires_in),
        },
        problems,
    }
}

fn show<T>(reading: &Reading<T>, f: impl Fn(&T) -> String) -> String {
    match reading {
        Reading::Ok(value) => f(value),
        Reading::Error(_) => "error".to_owned(),
    }
}

fn megabytes(bytes: &i64) -> String {
    format!("{:.1} MB", *bytes as f64 / 1_000_000.0)
}

/// The status as tables, then the problems.
pub fn render(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "TeIpsum {}", status.environment);
    let _ = writeln!(out, "\nUNIT                                      STATE");
    if status.units.is_empty() {
        let _ = writeln!(out, "(not read: no systemd here)");
    }
    for row in &status.units {
        let state = match &row.state {
            Reading::Ok(s) => format!("{} ({})", s.active, s.sub),
            Reading::Error(why) => format!("unknown: {why}"),
        };
        let _ = writeln!(out, "{:<41} {state}", row.unit);
    }
    let _ = writeln!(out, "\nSERVICE         ADDRESS               READY");
    for row in &status.services {
        let ready = match &row.ready {
            Reading::Ok(200) => "yes".to_owned(),
            Reading::Ok(code) => format!("no ({code})"),
            Reading::Error(why) => format!("no ({why})"),
        };
        let _ = writeln!(out, "{:<15} {:<21} {ready}", row.service, row.address);
    }
    let _ = writeln!(
        out,
        "\nDATABASE               CONNECTIONS  SIZE        OUTBOX (OLDEST)  PARKED"
    );
    for row in &status.databases {
        let _ = writeln!(
            out,
            "{:<22} {:<12} {:<11} {:<16} {}",
            row.database,
            show(&row.connections, i64::to_string),
            show(&row.size_bytes, megabytes),
            show(&row.outbox, |(n, age)| format!("{n} ({age} s)")),
            show(&row.parked, i64::to_string),
        );
    }
    let _ = writeln!(
        out,
        "connections: {}",
        show(&status.connections, |(max, used)| format!(
            "{used} of max_connections {max}"
        ))
    );
    let _ = writeln!(
        out,
        "\nCONSUMER GROUP         TOPIC              PARTITIONS  LAG"
    );
    match &status.consumer_groups {
        Reading::Ok(lags) => {
            for lag in lags {
                let _ = writeln!(
                    out,
                    "{:<22} {:<18} {:<11} {}{}",
                    lag.group,
                    lag.topic,
                    lag.partitions,
                    lag.lag,
                    if lag.uncommitted > 0 {
                        format!(" ({} never committed)", lag.uncommitted)
                    } else {
                        String::new()
                    }
                );
            }
        }
        Reading::Error(why) => {
            let _ = writeln!(out, "error: {why}");
        }
    }
    let _ = writeln!(out, "\nBACKUP                 LAST DUMP");
    if status.backups.is_empty() {
        let _ = writeln!(out, "(none taken here)");
    }
    for row in &status.backups {
        let age = show(&row.age_secs, |s| {
            format!("{:.1} h ago", *s as f64 / 3600.0)
        });
        let _ = writeln!(out, "{:<22} {age}", row.database);
    }
    let _ = writeln!(
        out,
        "\ncertificate {}: {}",
        status.certificate.domain,
        match &status.certificate.expires_in_secs {
            Reading::Ok(left) => format!("expires in {:.1} days", *left as f64 / 86_400.0),
            Reading::Error(why) => format!("unknown ({why})"),
        }
    );
    if status.problems.is_empty() {
        let _ = writeln!(out, "\nno problems");
    } else {
        let _ = writeln!(out, "\nPROBLEMS");
        for problem in &status.problems {
            let _ = writeln!(out, "- {problem}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemctl_show_is_read_by_key() {
        let state = parse_show("Type=notify\nActiveState=active\nSubState=running\n");
        assert_eq!(
            state,
            UnitState {
                active: "active".to_owned(),
                sub: "running".to_owned(),
                oneshot: false
            }
        );
        assert!(parse_show("ActiveState=inactive\nSubState=dead\nType=oneshot").oneshot);
    }
}
