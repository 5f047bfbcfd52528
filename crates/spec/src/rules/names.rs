//! Names of the platform, its services, topics, environments and hosts.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::{RawEnvironment, RawPlatform},
    syntax::is_name,
};

/// Service, topic and environment keys and the platform name are component names.
pub(super) fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let root = FieldPath::root();
    let groups: [(&'static str, &str, Vec<&String>); 3] = [
        ("service", "services", raw.services.keys().collect()),
        ("topic", "topics", raw.topics.keys().collect()),
        (
            "environment",
            "environments",
            raw.environments.keys().collect(),
        ),
    ];
    for (kind, field, names) in groups {
        for name in names {
            bad_name(root.field(field).field(name.as_str()), kind, name, errors);
        }
    }
    bad_name(root.field("name"), "platform", &raw.name, errors);
}

/// The host keys of an environment are component names.
pub(super) fn hosts(environment: &RawEnvironment, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    for host in environment.hosts.keys() {
        bad_name(
            path.field("hosts").field(host.as_str()),
            "host",
            host,
            errors,
        );
    }
}

fn bad_name(path: FieldPath, kind: &'static str, name: &str, errors: &mut Vec<Diagnostic>) {
    if !is_name(name) {
        errors.push(Diagnostic::new(
            path,
            Violation::BadName {
                kind,
                name: name.to_owned(),
            },
        ));
    }
}
