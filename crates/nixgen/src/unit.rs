//! The systemd unit of a service, built once and rendered twice: as the
//! NixOS `systemd.services.<name>` definition and as a plain unit file
//! (`teipsum render unit`), so that `systemd-analyze security --offline`
//! scores exactly what NixOS will install.

use std::collections::BTreeMap;

use teipsum_spec::plan::{Plan, ServicePlan};

use crate::nix::{Attrs, Nix, Part};

/// A `[Service]` value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// Repeated lines.
    List(Vec<String>),
    /// The executable and its arguments (`ExecStart=`).
    Exec {
        /// Binary name inside the package's `bin/`.
        binary: String,
        /// Arguments.
        args: Vec<String>,
    },
}

/// A unit, as NixOS describes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Unit name without `.service`.
    pub name: String,
    /// `Description=`.
    pub description: String,
    /// `After=`.
    pub after: Vec<String>,
    /// `Wants=`.
    pub wants: Vec<String>,
    /// `Requires=`.
    pub requires: Vec<String>,
    /// `WantedBy=` (install section).
    pub wanted_by: Vec<String>,
    /// `Environment=`, sorted.
    pub environment: BTreeMap<String, String>,
    /// `[Service]` settings, in the order they are printed, each with the
    /// reason it is there when the reason is not obvious.
    pub service: Vec<(&'static str, Value, Option<&'static str>)>,
}

/// The sandbox every TeIpsum unit runs in (security baseline, systemd section).
///
/// Services reach only loopback (nginx in front, PostgreSQL's socket, the
/// broker on 127.0.0.1), write nothing outside their runtime directory, and
/// hold no capabilities.
pub fn hardening() -> Vec<(&'static str, Value, Option<&'static str>)> {
    use Value::{Bool, List, Str};
    vec![
        ("NoNewPrivileges", Bool(true), None),
        (
            "CapabilityBoundingSet",
            List(vec![String::new()]),
            Some("no capabilities at all"),
        ),
        ("AmbientCapabilities", List(vec![String::new()]), None),
        (
            "ProtectSystem",
            Str("strict".into()),
            Some("the file system is read-only for the service"),
        ),
        ("ProtectHome", Bool(true), None),
        ("PrivateTmp", Bool(true), None),
        ("PrivateDevices", Bool(true), None),
        ("PrivateUsers", Bool(true), None),
        ("PrivateMounts", Bool(true), None),
        ("ProtectClock", Bool(true), None),
        ("ProtectHostname", Bool(true), None),
        ("ProtectKernelTunables", Bool(true), None),
        ("ProtectKernelModules", Bool(true), None),
        ("ProtectKernelLogs", Bool(true), None),
        ("ProtectControlGroups", Bool(true), None),
        ("ProtectProc", Str("invisible".into()), None),
        ("ProcSubset", Str("pid".into()), None),
        ("RestrictNamespaces", Bool(true), None),
        ("RestrictRealtime", Bool(true), None),
        ("RestrictSUIDSGID", Bool(true), None),
        ("LockPersonality", Bool(true), None),
        ("MemoryDenyWriteExecute", Bool(true), None),
        ("RemoveIPC", Bool(true), None),
        ("KeyringMode", Str("private".into()), None),
        ("DevicePolicy", Str("closed".into()), None),
        (
            "RestrictAddressFamilies",
            List(vec!["AF_UNIX".into(), "AF_INET".into(), "AF_INET6".into()]),
            Some("AF_UNIX: sd_notify, journald and the PostgreSQL socket"),
        ),
        (
            "IPAddressDeny",
            List(vec!["any".into()]),
            Some("loopback only: nginx in front, the broker on 127.0.0.1"),
        ),
        ("IPAddressAllow", List(vec!["localhost".into()]), None),
        ("SystemCallArchitectures", Str("native".into()), None),
        (
            "SystemCallFilter",
            List(vec![
                "@system-service".into(),
                "~@privileged".into(),
                "~@resources".into(),
            ]),
            None,
        ),
        ("SystemCallErrorNumber", Str("EPERM".into()), None),
        ("UMask", Str("0077".into()), None),
    ]
}

/// The unit of one service.
pub fn service_unit(service: &ServicePlan) -> Unit {
    use Value::{List, Str};
    let mut settings = vec![
        (
            "Type",
            Str("notify".into()),
            Some("READY=1 once the pool, migrations, producer and listener are up"),
        ),
        ("NotifyAccess", Str("main".into()), None),
        (
            "WatchdogSec",
            Str(format!("{}s", service.watchdog_sec)),
            Some("the service pings at half this interval while healthy"),
        ),
        (
            "ExecStart",
            Value::Exec {
                binary: service.binary.clone(),
                args: vec![],
            },
            None,
        ),
        ("Restart", Str("on-failure".into()), None),
        ("RestartSec", Str("2s".into()), None),
        (
            "TimeoutStopSec",
            Str("30s".into()),
            Some("time to drain requests on SIGTERM"),
        ),
        (
            "User",
            Str(service.user.clone()),
            Some("the user name is the PostgreSQL role: peer authentication"),
        ),
        ("Group", Str(service.group.clone()), None),
        (
            "RuntimeDirectory",
            Str(service.unit.trim_end_matches(".service").to_owned()),
            None,
        ),
        (
            "SyslogIdentifier",
            Str(service.unit.trim_end_matches(".service").to_owned()),
            None,
        ),
    ];
    if !service.credentials.is_empty() {
        settings.push((
            "LoadCredential",
            List(
                service
                    .credentials
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.path))
                    .collect(),
            ),
            Some("secrets are files, read from $CREDENTIALS_DIRECTORY; never in the environment"),
        ));
    }
    settings.push((
        "MemoryMax",
        Str(service.memory_max.clone()),
        Some("beyond it the kernel kills the service and systemd restarts it, not the host"),
    ));
    settings.push((
        "TasksMax",
        Str(service.tasks_max.to_string()),
        Some("a bound on threads, above tokio's blocking pool"),
    ));
    settings.extend(hardening());
    Unit {
        name: service.unit.trim_end_matches(".service").to_owned(),
        description: service.description.clone(),
        after: service.after.clone(),
        wants: service.wants.clone(),
        requires: service.requires.clone(),
        wanted_by: vec!["multi-user.target".into()],
        environment: service.environment.clone(),
        service: settings,
    }
}

/// The oneshot that creates the declared topics before the services start.
pub fn topics_unit(plan: &Plan) -> Unit {
    use Value::{Bool, Str};
    let mut args = vec![
        "topics".to_owned(),
        "apply".to_owned(),
        "--bootstrap".to_owned(),
        plan.kafka.bootstrap.clone(),
        "--wait".to_owned(),
        "300".to_owned(),
    ];
    for t in &plan.kafka.topics {
        args.push("--topic".to_owned());
        args.push(t.apply_arg());
    }
    let mut settings = vec![
        ("Type", Str("oneshot".into()), None),
        ("RemainAfterExit", Bool(true), None),
        (
            "ExecStart",
            Value::Exec {
                binary: "teipsum".into(),
                args,
            },
            Some("waits for the broker, creates missing topics, grows partitions, never shrinks"),
        ),
        ("DynamicUser", Bool(true), None),
        (
            "Restart",
            Str("on-failure".into()),
            Some(
                "a broker that took longer than the wait: try again rather than leave the services without topics",
            ),
        ),
        ("RestartSec", Str("10s".into()), None),
    ];
    settings.extend(hardening());
    Unit {
        name: plan_topics_unit(plan),
        description: format!("Create the {} Kafka topics", plan.platform),
        after: vec!["apache-kafka.service".into()],
        wants: vec![],
        requires: vec!["apache-kafka.service".into()],
        wanted_by: vec!["multi-user.target".into()],
        environment: BTreeMap::new(),
        service: settings,
    }
}

fn plan_topics_unit(plan: &Plan) -> String {
    teipsum_conventions::topics_unit(&plan.platform)
        .trim_end_matches(".service")
        .to_owned()
}

/// The NixOS definition of a unit (`systemd.services.<name>`).
pub fn to_nix(unit: &Unit, package: &Nix) -> Nix {
    let mut attrs = Attrs::new();
    attrs.set("description", unit.description.as_str());
    for (name, list) in [
        ("after", &unit.after),
        ("wants", &unit.wants),
        ("requires", &unit.requires),
        ("wantedBy", &unit.wanted_by),
    ] {
        if !list.is_empty() {
            attrs.set(name, list.clone());
        }
    }
    if !unit.environment.is_empty() {
        let mut env = Attrs::new();
        for (k, v) in &unit.environment {
            env.set(k.as_str(), v.as_str());
        }
        attrs.set_with("environment", "non-secret settings only", env);
    }
    let mut service = Attrs::new();
    for (key, value, why) in &unit.service {
        let nix = match value {
            Value::Str(s) => Nix::from(s.as_str()),
            Value::Bool(b) => Nix::Bool(*b),
            Value::List(items) => Nix::from(items.clone()),
            Value::Exec { binary, args } => {
                let mut text = format!("/bin/{binary}");
                for arg in args {
                    text.push(' ');
                    text.push_str(arg);
                }
                Nix::interp(vec![Part::Expr(package.clone()), Part::Lit(text)])
            }
        };
        match why {
            Some(why) => service.set_with(*key, *why, nix),
            None => service.set(*key, nix),
        };
    }
    attrs.set("serviceConfig", service);
    Nix::Attrs(attrs)
}

/// A systemd unit file equivalent to what NixOS generates from [`to_nix`],
/// with binaries under `bin_dir`.
pub fn to_unit_file(unit: &Unit, bin_dir: &str) -> String {
    let mut out = String::new();
    out.push_str("[Unit]\n");
    out.push_str(&format!("Description={}\n", unit.description));
    for (key, list) in [
        ("After", &unit.after),
        ("Wants", &unit.wants),
        ("Requires", &unit.requires),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("{key}={}\n", list.join(" ")));
        }
    }
    out.push_str("\n[Service]\n");
    for (key, value) in &unit.environment {
        out.push_str(&format!(
            "Environment=\"{key}={}\"\n",
            value.replace('"', "\\\"")
        ));
    }
    for (key, value, _) in &unit.service {
        match value {
            Value::Str(s) => out.push_str(&format!("{key}={s}\n")),
            Value::Bool(b) => out.push_str(&format!("{key}={b}\n")),
            Value::List(items) => {
                for item in items {
                    out.push_str(&format!("{key}={item}\n"));
                }
            }
            Value::Exec { binary, args } => {
                out.push_str(&format!("{key}={}/{binary}", bin_dir.trim_end_matches('/')));
                for arg in args {
                    out.push(' ');
                    out.push_str(arg);
                }
                out.push('\n');
            }
        }
    }
    out.push_str("\n[Install]\n");
    out.push_str(&format!("WantedBy={}\n", unit.wanted_by.join(" ")));
    out
}
