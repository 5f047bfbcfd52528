//! The systemd unit of a service, built once and rendered twice: as the
//! NixOS `systemd.services.<name>` definition and as a plain unit file
//! (`teipsum render unit`), so that `systemd-analyze security --offline`
//! scores exactly what NixOS will install.

use std::collections::BTreeMap;

use teipsum_spec::plan::{Plan, ServicePlan, UnitKind, UnitProfile, UnitSetting, UnitValue};

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
    pub service: Vec<ServiceSetting>,
}

/// A `[Service]` line: name, value, and why it is there when that is not obvious.
pub type ServiceSetting = (String, Value, Option<String>);

/// `[Service]` settings of `profile` that follow `ExecStart=`: the restart
/// and the stop timeout.
fn restart_settings(profile: &UnitProfile) -> Vec<ServiceSetting> {
    let restart = &profile.restart;
    let mut settings = vec![(
        "Restart".to_owned(),
        Value::Str(restart.policy.as_str().to_owned()),
        restart.why.clone(),
    )];
    if let Some(delay) = restart.delay() {
        settings.push(("RestartSec".to_owned(), Value::Str(delay), None));
    }
    if let Some(secs) = profile.timeout_stop_sec {
        settings.push((
            "TimeoutStopSec".to_owned(),
            Value::Str(format!("{secs}s")),
            Some("time to drain requests on SIGTERM".to_owned()),
        ));
    }
    settings
}

/// `Type=` and what goes with it.
fn kind_settings(profile: &UnitProfile) -> Vec<ServiceSetting> {
    match profile.kind {
        UnitKind::Notify => vec![
            (
                "Type".to_owned(),
                Value::Str(profile.kind.as_str().to_owned()),
                Some("READY=1 once the pool, migrations, producer and listener are up".to_owned()),
            ),
            ("NotifyAccess".to_owned(), Value::Str("main".into()), None),
        ],
        UnitKind::Oneshot => vec![
            (
                "Type".to_owned(),
                Value::Str(profile.kind.as_str().to_owned()),
                None,
            ),
            ("RemainAfterExit".to_owned(), Value::Bool(true), None),
        ],
    }
}

/// The plan's sandbox, when `profile` runs in it.
fn sandbox_settings(plan_sandbox: &[UnitSetting], profile: &UnitProfile) -> Vec<ServiceSetting> {
    if !profile.sandboxed {
        return vec![];
    }
    plan_sandbox
        .iter()
        .map(|setting| {
            let value = match &setting.value {
                UnitValue::Bool(b) => Value::Bool(*b),
                UnitValue::Str(s) => Value::Str(s.clone()),
                UnitValue::List(items) => Value::List(items.clone()),
            };
            (setting.name.clone(), value, setting.why.clone())
        })
        .collect()
}

fn set(name: &str, value: Value, why: Option<&str>) -> ServiceSetting {
    (name.to_owned(), value, why.map(str::to_owned))
}

/// The unit of one service of `plan`.
pub fn service_unit(plan: &Plan, service: &ServicePlan) -> Unit {
    use Value::{List, Str};
    let profile = &service.profile;
    let mut settings = kind_settings(profile);
    if let Some(secs) = profile.watchdog_sec {
        settings.push(set(
            "WatchdogSec",
            Str(format!("{secs}s")),
            Some("the service pings at half this interval while healthy"),
        ));
    }
    settings.push(set(
        "ExecStart",
        Value::Exec {
            binary: service.binary.clone(),
            args: vec![],
        },
        None,
    ));
    settings.extend(restart_settings(profile));
    let name = service.unit.trim_end_matches(".service").to_owned();
    settings.extend([
        set(
            "User",
            Str(service.user.clone()),
            Some("the user name is the PostgreSQL role: peer authentication"),
        ),
        set("Group", Str(service.group.clone()), None),
        set("RuntimeDirectory", Str(name.clone()), None),
        set("SyslogIdentifier", Str(name.clone()), None),
    ]);
    if !service.credentials.is_empty() {
        settings.push(set(
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
    settings.push(set(
        "MemoryMax",
        Str(service.memory_max.clone()),
        Some("beyond it the kernel kills the service and systemd restarts it, not the host"),
    ));
    settings.push(set(
        "TasksMax",
        Str(service.tasks_max.to_string()),
        Some("a bound on threads, above tokio's blocking pool"),
    ));
    settings.extend(sandbox_settings(&plan.sandbox, profile));
    Unit {
        name,
        description: service.description.clone(),
        after: service.after.clone(),
        wants: service.wants.clone(),
        requires: service.requires.clone(),
        wanted_by: profile.wanted_by.clone(),
        environment: service.environment.clone(),
        service: settings,
    }
}

/// The oneshot that creates the declared topics before the services start.
pub fn topics_unit(plan: &Plan) -> Unit {
    let topics = &plan.kafka.topics_unit;
    let mut args = vec![
        "topics".to_owned(),
        "apply".to_owned(),
        "--bootstrap".to_owned(),
        plan.kafka.bootstrap.clone(),
        "--wait".to_owned(),
        topics.wait_secs.to_string(),
    ];
    for t in &plan.kafka.topics {
        args.push("--topic".to_owned());
        args.push(t.apply_arg());
    }
    let mut settings = kind_settings(&topics.profile);
    settings.push(set(
        "ExecStart",
        Value::Exec {
            binary: topics.binary.clone(),
            args,
        },
        Some("waits for the broker, creates missing topics, grows partitions, never shrinks"),
    ));
    if topics.dynamic_user {
        settings.push(set("DynamicUser", Value::Bool(true), None));
    }
    settings.extend(restart_settings(&topics.profile));
    settings.extend(sandbox_settings(&plan.sandbox, &topics.profile));
    Unit {
        name: topics.unit.trim_end_matches(".service").to_owned(),
        description: topics.description.clone(),
        after: topics.after.clone(),
        wants: topics.wants.clone(),
        requires: topics.requires.clone(),
        wanted_by: topics.profile.wanted_by.clone(),
        environment: BTreeMap::new(),
        service: settings,
    }
}

/// `text` as systemd reads it literally: `%` starts a specifier (`%n`, `%i`)
/// in `Description=` and most other settings, so a literal one is `%%`
/// (NixOS writes `description` into the unit file as it is).
fn systemd_text(text: &str) -> String {
    text.replace('%', "%%")
}

/// The NixOS definition of a unit (`systemd.services.<name>`).
pub fn to_nix(unit: &Unit, package: &Nix) -> Nix {
    let mut attrs = Attrs::new();
    attrs.set("description", systemd_text(&unit.description).as_str());
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
            Some(why) => service.set_with(key.as_str(), why.as_str(), nix),
            None => service.set(key.as_str(), nix),
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
    out.push_str(&format!(
        "Description={}\n",
        systemd_text(&unit.description)
    ));
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
