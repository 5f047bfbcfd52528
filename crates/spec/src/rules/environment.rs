//! One environment: its domain, account, placement, ports, broker and
//! server settings and its durations.

use std::collections::BTreeMap;

use super::{Bounds, duration_within, headers, monitoring, names, topics};
use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::{RawEnvironment, RawPlatform, RawSetting},
    syntax::{
        domain_problem, is_cluster_id, is_email, is_header_text, is_identifier,
        is_kafka_setting_name,
    },
    topology::{edge_host, listeners},
    units::Coordination,
};

/// At least one environment, each valid, no two on one domain.
pub(super) fn check_all(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let root = FieldPath::root();
    if raw.environments.is_empty() {
        errors.push(Diagnostic::new(
            root.field("environments"),
            Violation::NoEnvironment,
        ));
    }
    let mut domains: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, environment) in &raw.environments {
        let path = root.field("environments").field(name);
        check(raw, name, environment, &path, errors);
        if let Some(other) = domains.insert(&environment.domain, name) {
            errors.push(Diagnostic::new(
                path.field("domain"),
                Violation::DuplicateDomain {
                    domain: environment.domain.clone(),
                    other: other.to_owned(),
                },
            ));
        }
    }
}

/// ZooKeeper mode is allowed, but runs on a Kafka past upstream support.
pub(super) fn warnings(raw: &RawPlatform, warnings: &mut Vec<Diagnostic>) {
    for (name, environment) in &raw.environments {
        if environment.kafka.mode == Coordination::Zookeeper {
            warnings.push(Diagnostic::new(
                FieldPath::root()
                    .field("environments")
                    .field(name)
                    .field("kafka")
                    .field("mode"),
                Violation::ZookeeperUnsupported,
            ));
        }
    }
}

fn check(
    raw: &RawPlatform,
    name: &str,
    environment: &RawEnvironment,
    path: &FieldPath,
    errors: &mut Vec<Diagnostic>,
) {
    if let Some(reason) = domain_problem(&environment.domain) {
        errors.push(Diagnostic::new(
            path.field("domain"),
            Violation::BadDomain {
                domain: environment.domain.clone(),
                reason,
            },
        ));
    }
    if !is_email(&environment.acme.email) {
        errors.push(Diagnostic::new(
            path.field("acme").field("email"),
            Violation::BadEmail {
                email: environment.acme.email.clone(),
            },
        ));
    }
    names::hosts(environment, path, errors);
    // Without hosts there is no edge; the placement rule reports that.
    let edge = edge_host(environment).unwrap_or_default();
    placement(environment, edge, path, errors);
    ports(raw, name, environment, edge, path, errors);
    topics::replication(raw, name, errors);
    if let Some(cluster_id) = &environment.kafka.cluster_id
        && !is_cluster_id(cluster_id)
    {
        errors.push(Diagnostic::new(
            path.field("kafka").field("cluster_id"),
            Violation::BadClusterId {
                cluster_id: cluster_id.clone(),
            },
        ));
    }
    headers::check(&environment.nginx, &path.field("nginx"), errors);
    settings(environment, path, errors);
    durations(environment, path, errors);
    monitoring::check(&environment.monitoring, path, errors);
}

/// PostgreSQL and Kafka run on a declared host, the services' one.
fn placement(
    environment: &RawEnvironment,
    edge: &str,
    path: &FieldPath,
    errors: &mut Vec<Diagnostic>,
) {
    let declared: Vec<String> = environment.hosts.keys().cloned().collect();
    for (component, field, host) in [
        (
            "postgres",
            path.field("postgres").field("host"),
            &environment.postgres.host,
        ),
        (
            "kafka",
            path.field("kafka").field("host"),
            &environment.kafka.host,
        ),
    ] {
        if !environment.hosts.contains_key(host) {
            errors.push(Diagnostic::new(
                field,
                Violation::UnknownHost {
                    host: host.clone(),
                    declared: declared.clone(),
                },
            ));
        } else if host != edge {
            errors.push(Diagnostic::new(
                field,
                Violation::SplitHosts {
                    component,
                    host: host.clone(),
                    services_host: edge.to_owned(),
                },
            ));
        }
    }
}

/// No two listeners on one port of a host: the first claimant keeps it.
fn ports(
    raw: &RawPlatform,
    name: &str,
    environment: &RawEnvironment,
    edge: &str,
    path: &FieldPath,
    errors: &mut Vec<Diagnostic>,
) {
    let mut taken: BTreeMap<(String, u16), String> = BTreeMap::new();
    for claim in listeners(&raw.services, environment, edge, path) {
        if let Some(other) = taken.get(&(claim.host.clone(), claim.port)) {
            errors.push(Diagnostic::new(
                claim.field,
                Violation::PortClash {
                    port: claim.port,
                    host: format!("{}` of environment `{name}", claim.host),
                    other: other.clone(),
                },
            ));
        } else {
            taken.insert((claim.host, claim.port), claim.owner);
        }
    }
}

/// postgresql.conf and server.properties entries that can be written safely.
fn settings(environment: &RawEnvironment, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    let writable = |value: &RawSetting| match value {
        RawSetting::Str(text) => text.is_empty() || is_header_text(text),
        RawSetting::Bool(_) | RawSetting::Int(_) | RawSetting::Float(_) => true,
    };
    let postgres = path.field("postgres").field("settings");
    for (setting, value) in &environment.postgres.settings {
        if !writable(value) || !is_identifier(setting) {
            errors.push(Diagnostic::new(
                postgres.field(setting.as_str()),
                Violation::BadSetting {
                    name: setting.clone(),
                },
            ));
        }
    }
    let kafka = path.field("kafka").field("settings");
    for (setting, value) in &environment.kafka.settings {
        if !writable(value) || !is_kafka_setting_name(setting) {
            errors.push(Diagnostic::new(
                kafka.field(setting.as_str()),
                Violation::BadSetting {
                    name: setting.clone(),
                },
            ));
        }
    }
}

/// Token lifetimes, the watchdog and the outbox lag bound.
fn durations(environment: &RawEnvironment, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    let jwt = path.field("jwt");
    duration_within(
        jwt.field("access_ttl"),
        environment.jwt.access_ttl,
        Bounds {
            what: "the access token lifetime",
            min: (60_000, "1min"),
            max: (900_000, "15min"),
        },
        errors,
    );
    duration_within(
        jwt.field("refresh_ttl"),
        environment.jwt.refresh_ttl,
        Bounds {
            what: "the refresh token lifetime",
            min: (3_600_000, "1h"),
            max: (90 * 86_400_000, "90d"),
        },
        errors,
    );
    duration_within(
        path.field("watchdog"),
        environment.watchdog,
        Bounds {
            what: "the watchdog interval",
            min: (2_000, "2s"),
            max: (600_000, "10min"),
        },
        errors,
    );
    duration_within(
        path.field("outbox_max_lag"),
        environment.outbox_max_lag,
        Bounds {
            what: "the outbox lag bound",
            min: (10_000, "10s"),
            max: (86_400_000, "1d"),
        },
        errors,
    );
}
