//! What a spec change does to a deployed host, in plain words.
//!
//! Compares the plan that was last compiled (`nix/generated/<env>/plan.json`,
//! what `nixos-rebuild switch` deployed) with the plan of the current spec,
//! and says which units are added, removed, restarted or reloaded, which
//! databases and topics appear, and which routes move.

use std::collections::{BTreeMap, BTreeSet};

use teipsum_spec::plan::{
    AccessRule, EdgeResponsePlan, KafkaMode, NginxPlan, Plan, Property, RateLimitPlan, Restart,
    ServicePlan, TopicPlan, UnitProfile, UnitSetting, UnitValue,
};

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
    diff_sandbox(old, new, &mut changes);
    diff_monitoring(old, new, &mut changes);
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
    out.extend(profile_changes(&old.profile, &new.profile));
    if old.kafka_client_id != new.kafka_client_id {
        out.push(format!(
            "Kafka client id {} → {}",
            old.kafka_client_id, new.kafka_client_id
        ));
    }
    if old.consumer_group != new.consumer_group {
        out.push(format!(
            "consumer group {} → {}",
            old.consumer_group.as_deref().unwrap_or("none"),
            new.consumer_group.as_deref().unwrap_or("none")
        ));
    }
    if old.database_ca_credential != new.database_ca_credential {
        out.push(format!(
            "database CA credential {} → {}",
            old.database_ca_credential, new.database_ca_credential
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

/// What changed in how systemd runs a unit, one phrase per setting.
fn profile_changes(old: &UnitProfile, new: &UnitProfile) -> Vec<String> {
    let mut out = Vec::new();
    let secs = |v: Option<u64>| v.map_or("none".to_owned(), |s| format!("{s}s"));
    if old.kind != new.kind {
        out.push(format!(
            "Type={} → Type={}",
            old.kind.as_str(),
            new.kind.as_str()
        ));
    }
    if old.watchdog_sec != new.watchdog_sec {
        out.push(format!(
            "watchdog {} → {}",
            secs(old.watchdog_sec),
            secs(new.watchdog_sec)
        ));
    }
    out.extend(restart_changes(&old.restart, &new.restart));
    if old.timeout_stop_sec != new.timeout_stop_sec {
        out.push(format!(
            "stop timeout {} → {}",
            secs(old.timeout_stop_sec),
            secs(new.timeout_stop_sec)
        ));
    }
    if old.sandboxed != new.sandboxed {
        out.push(if new.sandboxed {
            "now sandboxed".to_owned()
        } else {
            "no longer sandboxed".to_owned()
        });
    }
    if old.wanted_by != new.wanted_by {
        out.push(format!(
            "wanted by {} → {}",
            old.wanted_by.join(" "),
            new.wanted_by.join(" ")
        ));
    }
    out
}

/// What changed in a unit's restart.
fn restart_changes(old: &Restart, new: &Restart) -> Vec<String> {
    let mut out = Vec::new();
    if old.policy != new.policy {
        out.push(format!(
            "Restart={} → Restart={}",
            old.policy.as_str(),
            new.policy.as_str()
        ));
    }
    if old.delay_ms != new.delay_ms {
        let delay = |r: &Restart| r.delay().unwrap_or_else(|| "default".to_owned());
        out.push(format!("RestartSec {} → {}", delay(old), delay(new)));
    }
    if old.start_limit_interval_sec != new.start_limit_interval_sec {
        let limit = |r: &Restart| {
            r.start_limit_interval_sec
                .map_or("default".to_owned(), |s| format!("{s}s"))
        };
        out.push(format!(
            "start limit interval {} → {}",
            limit(old),
            limit(new)
        ));
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
    let unit = new.kafka.topics_unit.unit.clone();
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
                    "route {prefix}: {} → {}{}{}",
                    old_r.service,
                    r.service,
                    if old_r.rate_limits != r.rate_limits {
                        if r.rate_limits.is_empty() {
                            ", no longer rate-limited".to_owned()
                        } else {
                            format!(", now rate-limited by {}", r.rate_limits.join(", "))
                        }
                    } else {
                        String::new()
                    },
                    if old_r.micro_cache_secs != r.micro_cache_secs {
                        format!(
                            ", micro-cache {}s → {}s",
                            old_r.micro_cache_secs, r.micro_cache_secs
                        )
                    } else {
                        String::new()
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
    let before = by_name(&o.rate_limits, |l| &l.zone);
    let after = by_name(&n.rate_limits, |l| &l.zone);
    for (zone, l) in &after {
        let describe = |l: &RateLimitPlan| {
            let methods = if l.methods.is_empty() {
                String::new()
            } else {
                format!(" ({} only)", l.methods.join(", "))
            };
            format!("{} burst {} in {}{methods}", l.rate, l.burst, l.zone_size)
        };
        match before.get(zone) {
            None => what.push(format!(
                "{} rate limit {zone} added: {}",
                l.purpose,
                describe(l)
            )),
            Some(old_l) if old_l != l => what.push(format!(
                "{} rate limit {} → {}",
                l.purpose,
                describe(old_l),
                describe(l)
            )),
            Some(_) => {}
        }
    }
    for (zone, l) in &before {
        if !after.contains_key(zone) {
            what.push(format!("{} rate limit {zone} removed", l.purpose));
        }
    }
    if o.limit_key != n.limit_key || o.limit_status != n.limit_status {
        what.push(format!(
            "rate limits count ${} (IPv6 by /{}) and answer {} → ${} (IPv6 by /{}) and answer {}",
            o.limit_key.variable,
            o.limit_key.ipv6_prefix_bits,
            o.limit_status,
            n.limit_key.variable,
            n.limit_key.ipv6_prefix_bits,
            n.limit_status
        ));
    }
    match (&o.micro_cache, &n.micro_cache) {
        (None, Some(c)) => what.push(format!("micro-cache {} added at {}", c.name, c.path)),
        (Some(c), None) => what.push(format!("micro-cache {} removed", c.name)),
        (Some(a), Some(b)) if a != b => what.push(format!(
            "micro-cache {} ({} keys, at most {}, at {}) → {} ({} keys, at most {}, at {})",
            a.name, a.keys_size, a.max_size, a.path, b.name, b.keys_size, b.max_size, b.path
        )),
        _ => {}
    }
    let locations = |plan: &NginxPlan| -> BTreeMap<String, String> {
        plan.static_locations
            .iter()
            .map(|l| {
                (
                    l.path.clone(),
                    format!(
                        "Cache-Control \"{}\"{}{}",
                        l.cache_control,
                        if l.always { " always" } else { "" },
                        l.try_files
                            .as_ref()
                            .map_or(String::new(), |t| format!(", try_files {t}"))
                    ),
                )
            })
            .collect()
    };
    let (before, after) = (locations(o), locations(n));
    for (path, rule) in &after {
        match before.get(path) {
            None => what.push(format!("location {path} added: {rule}")),
            Some(old_rule) if old_rule != rule => {
                what.push(format!("location {path}: {old_rule} → {rule}"))
            }
            Some(_) => {}
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            what.push(format!("location {path} removed"));
        }
    }
    let answer = |r: &EdgeResponsePlan| format!("{} {} \"{}\"", r.status, r.code, r.message);
    match (&o.api_fallback, &n.api_fallback) {
        (None, Some(f)) => what.push(format!(
            "unknown API paths under {} answer {}",
            f.path,
            answer(&f.response)
        )),
        (Some(f), None) => what.push(format!(
            "unknown API paths under {} no longer answered by nginx",
            f.path
        )),
        (Some(a), Some(b)) if a != b => what.push(format!(
            "unknown API paths under {}: {} → {}",
            b.path,
            answer(&a.response),
            answer(&b.response)
        )),
        _ => {}
    }
    if o.edge_errors != n.edge_errors {
        let before: BTreeMap<u16, String> = o
            .edge_errors
            .iter()
            .map(|e| (e.status, answer(e)))
            .collect();
        let after: BTreeMap<u16, String> = n
            .edge_errors
            .iter()
            .map(|e| (e.status, answer(e)))
            .collect();
        for (status, a) in &after {
            if before.get(status) != Some(a) {
                what.push(format!("edge error {a}"));
            }
        }
        for status in before.keys() {
            if !after.contains_key(status) {
                what.push(format!("edge error {status} left to nginx"));
            }
        }
        if before == after {
            what.push("edge error locations".to_owned());
        }
    }
    if o.proxy_headers != n.proxy_headers {
        let headers = |p: &NginxPlan| {
            p.proxy_headers
                .iter()
                .map(|h| format!("{} {}", h.name, h.value))
                .collect::<Vec<_>>()
                .join(", ")
        };
        what.push(format!("proxy headers {} → {}", headers(o), headers(n)));
    }
    for preset in &n.presets {
        match o.presets.iter().find(|p| p.option == preset.option) {
            Some(old_p) if old_p == preset => {}
            Some(old_p) if old_p.enabled != preset.enabled => what.push(format!(
                "{} {}",
                preset.option,
                if preset.enabled { "on" } else { "off" }
            )),
            Some(_) => what.push(format!("{} settings changed", preset.option)),
            None => what.push(format!("{} added", preset.option)),
        }
    }
    for preset in &o.presets {
        if !n.presets.iter().any(|p| p.option == preset.option) {
            what.push(format!("{} removed", preset.option));
        }
    }
    if o.server_tokens != n.server_tokens {
        what.push(format!(
            "server tokens {}",
            if n.server_tokens { "on" } else { "off" }
        ));
    }
    for (flag, was, is) in [
        ("reload on change", o.reload_on_change, n.reload_on_change),
        ("ACME certificate", o.acme_certificate, n.acme_certificate),
        ("HTTPS only", o.force_tls, n.force_tls),
    ] {
        if was != is {
            what.push(format!("{flag} {}", if is { "on" } else { "off" }));
        }
    }
    if o.client_max_body_size != n.client_max_body_size {
        what.push(format!(
            "body limit {} → {}",
            o.client_max_body_size, n.client_max_body_size
        ));
    }
    if o.keepalive != n.keepalive || o.upstreams != n.upstreams || old.frontend != new.frontend {
        what.push("upstreams or static files".to_owned());
    }
    if !what.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("nginx: {}", what.join("; ")),
            effects: vec![Effect::Reload("nginx.service".to_owned())],
        });
    }
    let (oa, na) = (&old.acme, &new.acme);
    let mut unit = restart_changes(&oa.order_restart, &na.order_restart);
    if oa.order_ordering != na.order_ordering {
        unit.push("ordering".to_owned());
    }
    if !unit.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("unit {}.service: {}", na.order_unit, unit.join("; ")),
            effects: vec![],
        });
    }
    let account = |a: &teipsum_spec::plan::AcmePlan| {
        (
            a.email.clone(),
            a.server.clone(),
            a.staging,
            a.accept_terms,
            a.order_unit.clone(),
        )
    };
    if old.domain != new.domain || account(oa) != account(na) {
        changes.push(Change {
            sign: '~',
            what: format!("domain or ACME account: {} → {}", old.domain, new.domain),
            effects: vec![
                Effect::Start(format!("{}.service", na.order_unit)),
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
    if o.access != n.access {
        let before: BTreeSet<String> = o.access.iter().map(AccessRule::line).collect();
        let after: BTreeSet<String> = n.access.iter().map(AccessRule::line).collect();
        let mut what: Vec<String> = after
            .difference(&before)
            .map(|l| format!("+ `{l}`"))
            .chain(before.difference(&after).map(|l| format!("- `{l}`")))
            .collect();
        if what.is_empty() {
            what.push("rules reordered".to_owned());
        }
        changes.push(Change {
            sign: '~',
            what: format!("postgresql access: {}", what.join(", ")),
            effects: vec![Effect::Reload("postgresql.service".to_owned())],
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
    } else if o.settings != n.settings
        || o.package != n.package
        || o.mode != n.mode
        || o.jvm_options != n.jvm_options
    {
        let mut what = vec!["Kafka broker settings".to_owned()];
        if let (
            KafkaMode::Zookeeper {
                zookeeper_conf: a,
                zookeeper_restart: ra,
                broker_ordering: oa,
                ..
            },
            KafkaMode::Zookeeper {
                zookeeper_conf: b,
                zookeeper_restart: rb,
                broker_ordering: ob,
                ..
            },
        ) = (&o.mode, &n.mode)
        {
            if a != b {
                let conf = |c: &[Property]| {
                    c.iter()
                        .map(|p| format!("{}={}", p.name, p.value))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                what.push(format!("ZooKeeper {} → {}", conf(a), conf(b)));
            }
            let restart = restart_changes(ra, rb);
            if !restart.is_empty() {
                what.push(format!("ZooKeeper unit: {}", restart.join("; ")));
            }
            if oa != ob {
                what.push("the broker's ordering after ZooKeeper".to_owned());
            }
        }
        changes.push(Change {
            sign: '~',
            what: what.join("; "),
            effects: vec![Effect::Restart("apache-kafka.service".to_owned())],
        });
    }
    let restart = restart_changes(&o.broker_restart, &n.broker_restart);
    if !restart.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("unit apache-kafka.service: {}", restart.join("; ")),
            effects: vec![],
        });
    }
    let (a, b) = (&o.topics_unit, &n.topics_unit);
    if a != b {
        let mut what = profile_changes(&a.profile, &b.profile);
        if a.wait_secs != b.wait_secs {
            what.push(format!(
                "waits {}s → {}s for the broker",
                a.wait_secs, b.wait_secs
            ));
        }
        if a.after != b.after || a.wants != b.wants || a.requires != b.requires {
            what.push("ordering changed".to_owned());
        }
        if a.dynamic_user != b.dynamic_user
            || a.binary != b.binary
            || a.description != b.description
        {
            what.push("unit changed".to_owned());
        }
        changes.push(Change {
            sign: '~',
            what: format!("unit {}: {}", b.unit, what.join("; ")),
            effects: vec![Effect::Rerun(b.unit.clone())],
        });
    }
}

/// A sandbox change restarts every service and runs the topics unit again.
fn diff_sandbox(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    if old.sandbox == new.sandbox {
        return;
    }
    let render = |s: &UnitSetting| {
        let value = match &s.value {
            UnitValue::Bool(b) => b.to_string(),
            UnitValue::Str(v) => v.clone(),
            UnitValue::List(items) => items.join(" "),
        };
        format!("{}={value}", s.name)
    };
    let before: BTreeSet<String> = old.sandbox.iter().map(render).collect();
    let after: BTreeSet<String> = new.sandbox.iter().map(render).collect();
    let mut what: Vec<String> = after
        .difference(&before)
        .map(|s| format!("+{s}"))
        .chain(before.difference(&after).map(|s| format!("-{s}")))
        .collect();
    if what.is_empty() {
        what.push("settings reordered".to_owned());
    }
    let mut effects: Vec<Effect> = new
        .services
        .iter()
        .filter(|s| s.profile.sandboxed)
        .map(|s| Effect::Restart(s.unit.clone()))
        .collect();
    if new.kafka.topics_unit.profile.sandboxed {
        effects.push(Effect::Rerun(new.kafka.topics_unit.unit.clone()));
    }
    changes.push(Change {
        sign: '~',
        what: format!("sandbox of every unit: {}", what.join(", ")),
        effects,
    });
}

/// The units of the monitoring stack, as nixpkgs names them (Grafana, Loki
/// and Vector aside: each has its own switch).
pub const MONITORING_UNITS: [&str; 6] = [
    "prometheus.service",
    "alertmanager.service",
    "prometheus-node-exporter.service",
    "prometheus-postgres-exporter.service",
    "prometheus-nginx-exporter.service",
    "prometheus-kafka-exporter.service",
];

fn diff_monitoring(old: &Plan, new: &Plan, changes: &mut Vec<Change>) {
    let units = |effect: fn(String) -> Effect| {
        MONITORING_UNITS
            .iter()
            .map(|u| effect((*u).to_owned()))
            .collect::<Vec<_>>()
    };
    let (old, new) = match (&old.monitoring, &new.monitoring) {
        (None, None) => return,
        (None, Some(_)) => {
            changes.push(Change {
                sign: '+',
                what: "monitoring: Prometheus, the exporters and Alertmanager (and Grafana, Loki, Vector where enabled)".to_owned(),
                effects: units(Effect::Start),
            });
            return;
        }
        (Some(_), None) => {
            changes.push(Change {
                sign: '-',
                what: "monitoring: Prometheus, the exporters and Alertmanager".to_owned(),
                effects: units(Effect::Stop),
            });
            return;
        }
        (Some(old), Some(new)) => (old, new),
    };
    let rules = |m: &teipsum_spec::plan::MonitoringPlan| {
        m.rules
            .iter()
            .flat_map(|g| &g.rules)
            .map(|r| (r.alert.clone(), r.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (before, after) = (rules(old), rules(new));
    let mut what: Vec<String> = after
        .keys()
        .filter(|a| !before.contains_key(*a))
        .map(|a| format!("+{a}"))
        .chain(
            before
                .keys()
                .filter(|a| !after.contains_key(*a))
                .map(|a| format!("-{a}")),
        )
        .chain(
            after
                .iter()
                .filter(|(a, r)| before.get(*a).is_some_and(|b| b != *r))
                .map(|(a, _)| format!("~{a}")),
        )
        .collect();
    if old.scrape != new.scrape {
        what.push("scrape targets".to_owned());
    }
    if old.prometheus != new.prometheus {
        what.push("Prometheus settings".to_owned());
    }
    if !what.is_empty() {
        changes.push(Change {
            sign: '~',
            what: format!("monitoring: {}", what.join(", ")),
            effects: vec![Effect::Reload("prometheus.service".to_owned())],
        });
    }
    if old.alertmanager != new.alertmanager {
        changes.push(Change {
            sign: '~',
            what: format!("alert delivery to `{}`", new.alertmanager.receiver),
            effects: vec![Effect::Restart("alertmanager.service".to_owned())],
        });
    }
    if old.exporters != new.exporters {
        changes.push(Change {
            sign: '~',
            what: "monitoring: exporter settings".to_owned(),
            effects: MONITORING_UNITS[2..]
                .iter()
                .map(|u| Effect::Restart((*u).to_owned()))
                .collect(),
        });
    }
    diff_part(
        &old.grafana,
        &new.grafana,
        "Grafana and its dashboards",
        &["grafana.service"],
        changes,
    );
    match (&old.logs, &new.logs) {
        (Some(o), Some(n)) if o != n => {
            // Loki keeps running when only what Vector reads changes.
            let loki = (o.port, o.grpc_port, &o.retention) != (n.port, n.grpc_port, &n.retention);
            let mut effects = vec![Effect::Restart("vector.service".to_owned())];
            if loki {
                effects.push(Effect::Restart("loki.service".to_owned()));
            }
            changes.push(Change {
                sign: '~',
                what: "logs: the journal shipped by Vector to Loki".to_owned(),
                effects,
            });
        }
        (o, n) => diff_part(
            o,
            n,
            "logs: the journal shipped by Vector to Loki",
            &["loki.service", "vector.service"],
            changes,
        ),
    }
}

/// A part of monitoring that is on or off by itself: started, stopped, or
/// restarted when its settings change (Grafana reads provisioned files at start).
fn diff_part<T: PartialEq>(
    old: &Option<T>,
    new: &Option<T>,
    what: &str,
    units: &[&str],
    changes: &mut Vec<Change>,
) {
    let effects =
        |effect: fn(String) -> Effect| units.iter().map(|u| effect((*u).to_owned())).collect();
    let change = match (old, new) {
        (None, Some(_)) => ('+', effects(Effect::Start)),
        (Some(_), None) => ('-', effects(Effect::Stop)),
        (Some(o), Some(n)) if o != n => ('~', effects(Effect::Restart)),
        _ => return,
    };
    changes.push(Change {
        sign: change.0,
        what: what.to_owned(),
        effects: change.1,
    });
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
