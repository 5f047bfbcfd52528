//! What a spec change does to a deployed host, in plain words.
//!
//! Compares the plan that was last compiled (`nix/generated/<env>/plan.json`,
//! what `nixos-rebuild switch` deployed) with the plan of the current spec,
//! and says which units are added, removed, restarted or reloaded, which
//! databases and topics appear, and which routes move.

use std::collections::{BTreeMap, BTreeSet};

use teipsum_spec::plan::{Plan, ServicePlan, TopicPlan};

/// What happens to the running host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// A unit starts for the first time.
    Start(String),
    /// A unit stops and disappears.
    Stop(String),
    /// A unit restarts.
    Restart(String),
    /// A unit reloads its configuration without dropping connections.
    Reload(String),
    /// A oneshot runs again.
    Rerun(String),
    /// Something only a human can do.
    Manual(String),
}

/// One change, with what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `+`, `-` or `~`.
    pub sign: char,
    /// What changes, in words.
    pub what: String,
    /// What that does to the host.
    pub effects: Vec<Effect>,
}

/// The changes from `old` to `new`, in a fixed order.
pub fn diff(old: &Plan, new: &Plan) -> Vec<Change> {
    let mut changes = Vec::new();
    diff_services(old, new, &mut changes);
    diff_databases(old, new, &mut changes);
    diff_topics(old, new, &mut changes);
    diff_routes(old, new, &mut changes);
    diff_edge(old, new, &mut changes);
    diff_postgres(old, new, &mut changes);
    diff_kafka(old, new, &mut changes);
    changes
}

fn by_name<'a, T>(items: &'a [T], name: impl Fn(&'a T) -> &'a str) -> BTreeMap<&'a str, &'a T> {
    items.iter().map(|i| (name(i), i)).collect()
}

fn diff_services(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let before = by_name(&old.services, |s| &s.name);
    let after = by_name(&new.services, |s| &s.name);
    for (name, s) in &after {
        match before.get(name) {
            None => changes.push(Change {
                sign: '+',
                what: format!(
                    "service {name}: unit {} on {}:{}",
                    s.unit, s.address, s.port
                ),
                effects: vec![Effect::Start(s.unit.clone())],
            }),
            Some(old_s) if old_s != s => changes.push(Change {
                sign: '~',
                what: format!("service {name}: {}", service_changes(old_s, s).join("; ")),
                effects: vec![Effect::Restart(s.unit.clone())],
            }),
            Some(_) => {}
        }
    }
    for (name, s) in &before {
        if !after.contains_key(name) {
            changes.push(Change {
                sign: '-',
                what: format!("service {name}: unit {} and user {}", s.unit, s.user),
                effects: vec![Effect::Stop(s.unit.clone())],
            });
        }
    }
}

fn service_changes(old: &ServicePlan, new: &ServicePlan) -> Vec<String> {
    let mut out = Vec::new();
    if old.port != new.port {
        out.push(format!("port {} → {}", old.port, new.port));
    }
    for (key, value) in &new.environment {
        match old.environment.get(key) {
            None => out.push(format!("{key}={value} added")),
            Some(v) if v != value => out.push(format!("{key} {v} → {value}")),
            Some(_) => {}
        }
    }
    for key in old.environment.keys() {
        if !new.environment.contains_key(key) {
            out.push(format!("{key} removed"));
        }
    }
    if old.credentials != new.credentials {
        out.push("credentials changed".to_owned());
    }
    if old.produces != new.produces || old.consumes != new.consumes {
        out.push("topics changed".to_owned());
    }
    if old.after != new.after || old.requires != new.requires || old.wants != new.wants {
        out.push("ordering changed".to_owned());
    }
    if old.watchdog_sec != new.watchdog_sec {
        out.push(format!(
            "watchdog {}s → {}s",
            old.watchdog_sec, new.watchdog_sec
        ));
    }
    if old.description != new.description {
        out.push("description changed".to_owned());
    }
    if out.is_empty() {
        out.push("unit changed".to_owned());
    }
    out
}

fn diff_databases(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let before: BTreeSet<&str> = old
        .postgres
        .databases
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    let after: BTreeSet<&str> = new
        .postgres
        .databases
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    for name in after.difference(&before) {
        changes.push(Change {
            sign: '+',
            what: format!("database {name} owned by role {name}"),
            effects: vec![Effect::Rerun("postgresql-setup.service".to_owned())],
        });
    }
    for name in before.difference(&after) {
        changes.push(Change {
            sign: '-',
            what: format!("database {name} is no longer declared"),
            effects: vec![Effect::Manual(format!(
                "NixOS never drops databases: `DROP DATABASE {name}` by hand once its backup is safe"
            ))],
        });
    }
}

fn diff_topics(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let unit = teipsum_conventions::topics_unit(&new.platform);
    let before = by_name(&old.kafka.topics, |t| &t.name);
    let after = by_name(&new.kafka.topics, |t| &t.name);
    for (name, t) in &after {
        match before.get(name) {
            None => changes.push(Change {
                sign: '+',
                what: format!("topic {name} ({} partitions)", t.partitions),
                effects: vec![Effect::Rerun(unit.clone())],
            }),
            Some(old_t) if topic_settings(old_t) != topic_settings(t) => {
                let mut effects = vec![Effect::Rerun(unit.clone())];
                if t.partitions < old_t.partitions {
                    effects.push(Effect::Manual(format!(
                        "partitions cannot shrink ({} → {}): teipsum-topics keeps {}",
                        old_t.partitions, t.partitions, old_t.partitions
                    )));
                }
                let mut what = Vec::new();
                if old_t.partitions != t.partitions {
                    what.push(format!(
                        "partitions {} → {}",
                        old_t.partitions, t.partitions
                    ));
                }
                if old_t.replication_factor != t.replication_factor {
                    what.push(format!(
                        "replication factor {} → {}",
                        old_t.replication_factor, t.replication_factor
                    ));
                }
                if old_t.retention_ms != t.retention_ms {
                    what.push(format!(
                        "retention {}ms → {}ms",
                        old_t.retention_ms, t.retention_ms
                    ));
                }
                changes.push(Change {
                    sign: '~',
                    what: format!("topic {name}: {}", what.join(", ")),
                    effects,
                });
            }
            Some(_) => {}
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            changes.push(Change {
                sign: '-',
                what: format!("topic {name} is no longer declared"),
                effects: vec![Effect::Manual(format!(
                    "topics are never deleted automatically: delete {name} by hand once it is drained"
                ))],
            });
        }
    }
}

fn topic_settings(t: &TopicPlan) -> (u32, u16, u64) {
    (t.partitions, t.replication_factor, t.retention_ms)
}

fn diff_routes(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let before = by_name(&old.nginx.routes, |r| &r.prefix);
    let after = by_name(&new.nginx.routes, |r| &r.prefix);
    let reload = || vec![Effect::Reload("nginx.service".to_owned())];
    for (prefix, r) in &after {
        match before.get(prefix) {
            None => changes.push(Change {
                sign: '+',
                what: format!("route {prefix} → {}", r.service),
                effects: reload(),
            }),
            Some(old_r) if old_r != r => changes.push(Change {
                sign: '~',
                what: format!(
                    "route {prefix}: {} → {}{}",
                    old_r.service,
                    r.service,
                    if old_r.rate_limited != r.rate_limited {
                        if r.rate_limited {
                            ", now rate-limited"
                        } else {
                            ", no longer rate-limited"
                        }
                    } else {
                        ""
                    }
                ),
                effects: reload(),
            }),
            Some(_) => {}
        }
    }
    for (prefix, r) in &before {
        if !after.contains_key(prefix) {
            changes.push(Change {
                sign: '-',
                what: format!("route {prefix} (was {})", r.service),
                effects: reload(),
            });
        }
    }
}

fn diff_edge(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let (o, n) = (&old.nginx, &new.nginx);
    let mut what = Vec::new();
    if o.security_headers != n.security_headers
        || o.api_csp != n.api_csp
        || o.frontend_csp != n.frontend_csp
    {
        what.push("security headers".to_owned());
    }
    if o.auth_rate_limit != n.auth_rate_limit {
        what.push(format!(
            "authentication rate limit {} burst {} → {} burst {}",
            o.auth_rate_limit.rate,
            o.auth_rate_limit.burst,
            n.auth_rate_limit.rate,
            n.auth_rate_limit.burst
        ));
    }
    if o.order_rate_limit != n.order_rate_limit {
        what.push(format!(
            "order placement rate limit {} burst {} → {} burst {}",
            o.order_rate_limit.rate,
            o.order_rate_limit.burst,
            n.order_rate_limit.rate,
            n.order_rate_limit.burst
        ));
    }
    if o.client_max_body_size != n.client_max_body_size {
        what.push(format!(
            "body limit {} → {}",
            o.client_max_body_size, n.client_max_body_size
        ));
    }
    if o.gzip != n.gzip
        || o.keepalive != n.keepalive
        || o.upstreams != n.upstreams
        || old.frontend != new.frontend
    {
        what.push("upstreams or static files".to_owned());
    }
    if !what.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("nginx: {}", what.join("; ")),
            effects: vec![Effect::Reload("nginx.service".to_owned())],
        });
    }
    if old.domain != new.domain || old.acme != new.acme {
        changes.push(Change {
            sign: '~',
            what: format!("domain or ACME account: {} → {}", old.domain, new.domain),
            effects: vec![
                Effect::Start(format!("acme-order-renew-{}.service", new.domain)),
                Effect::Reload("nginx.service".to_owned()),
            ],
        });
    }
}

fn diff_postgres(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let (o, n) = (&old.postgres, &new.postgres);
    if o.version != n.version {
        changes.push(Change {
            sign: '~',
            what: format!("PostgreSQL {} → {}", o.version, n.version),
            effects: vec![Effect::Manual(
                "a major upgrade needs pg_upgrade into the new data directory before switching"
                    .to_owned(),
            )],
        });
    }
    let mut settings = Vec::new();
    for (key, value) in &n.settings {
        if o.settings.get(key) != Some(value) {
            settings.push(format!(
                "{key} = {}",
                serde_json::to_string(value).unwrap_or_default()
            ));
        }
    }
    for key in o.settings.keys() {
        if !n.settings.contains_key(key) {
            settings.push(format!("{key} back to its default"));
        }
    }
    if o.port != n.port {
        settings.push(format!("port {} → {}", o.port, n.port));
    }
    if !settings.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("postgresql: {}", settings.join(", ")),
            effects: vec![Effect::Restart("postgresql.service".to_owned())],
        });
    }
    if o.backup != n.backup {
        changes.push(Change {
            sign: '~',
            what: format!(
                "backups: {} of {} at {}",
                n.backup.compression,
                n.backup.databases.join(", "),
                n.backup.schedule
            ),
            effects: vec![],
        });
    }
}

fn diff_kafka(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let (o, n) = (&old.kafka, &new.kafka);
    if std::mem::discriminant(&o.mode) != std::mem::discriminant(&n.mode) {
        changes.push(Change {
            sign: '~',
            what: format!("Kafka mode {} → {}", mode(&o.mode), mode(&n.mode)),
            effects: vec![Effect::Manual(
                "migrating between ZooKeeper and KRaft needs Kafka's migration procedure; topics restart empty otherwise".to_owned(),
            )],
        });
    } else if o.settings != n.settings || o.package != n.package || o.mode != n.mode {
        changes.push(Change {
            sign: '~',
            what: "Kafka broker settings".to_owned(),
            effects: vec![Effect::Restart("apache-kafka.service".to_owned())],
        });
    }
}

fn mode(mode: &teipsum_spec::plan::KafkaMode) -> &'static str {
    match mode {
        teipsum_spec::plan::KafkaMode::Zookeeper { .. } => "zookeeper",
        teipsum_spec::plan::KafkaMode::Kraft { .. } => "kraft",
    }
}

/// The changes as text for a human, ending with the summary of effects.
pub fn describe(changes: &[Change]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("no changes: the host is already what the spec describes\n");
        return out;
    }
    for c in changes {
        let _ = writeln!(out, "{} {}", c.sign, c.what);
    }
    let effects: BTreeSet<&Effect> = changes.iter().flat_map(|c| &c.effects).collect();
    let list = |f: fn(&Effect) -> Option<&String>| -> Vec<&String> {
        effects.iter().filter_map(|e| f(e)).collect()
    };
    let groups: [(&str, Vec<&String>); 5] = [
        (
            "start",
            list(|e| {
                if let Effect::Start(u) = e {
                    Some(u)
                } else {
                    None
                }
            }),
        ),
        (
            "stop",
            list(|e| {
                if let Effect::Stop(u) = e {
                    Some(u)
                } else {
                    None
                }
            }),
        ),
        (
            "restart",
            list(|e| {
                if let Effect::Restart(u) = e {
                    Some(u)
                } else {
                    None
                }
            }),
        ),
        (
            "reload",
            list(|e| {
                if let Effect::Reload(u) = e {
                    Some(u)
                } else {
                    None
                }
            }),
        ),
        (
            "run again",
            list(|e| {
                if let Effect::Rerun(u) = e {
                    Some(u)
                } else {
                    None
                }
            }),
        ),
    ];
    out.push_str("\nnixos-rebuild switch will:\n");
    for (verb, units) in groups {
        if !units.is_empty() {
            let names: Vec<&str> = units.iter().map(|u| u.as_str()).collect();
            let _ = writeln!(out, "  {verb:<9} {}", names.join(" "));
        }
    }
    for e in &effects {
        if let Effect::Manual(text) = e {
            let _ = writeln!(out, "  by hand:  {text}");
        }
    }
    out
}
