//! Cross-reference checks and resolution: [`RawPlatform`] → one [`Plan`] per environment.
//!
//! Each rule is a small function that pushes [`Diagnostic`]s; all rules run,
//! so a user sees every problem at once. Resolution happens only when no rule
//! failed.

use std::collections::{BTreeMap, BTreeSet};

use teipsum_conventions::{self as conventions, env};

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    plan::*,
    policy,
    raw::*,
};

/// A spec that passed every check, resolved for each of its environments.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Platform name.
    pub name: String,
    /// One plan per environment, by name.
    pub plans: BTreeMap<String, Plan>,
    /// Things that are allowed but probably unintended.
    pub warnings: Vec<Diagnostic>,
}

/// Let's Encrypt production directory.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt staging directory (untrusted certificates, generous limits).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Headers the security baseline requires on every response.
pub const REQUIRED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
];

/// Names that PostgreSQL or NixOS already use for databases, roles or system users.
const RESERVED_DATABASES: [&str; 9] = [
    "postgres",
    "template0",
    "template1",
    "root",
    "nobody",
    "nginx",
    "acme",
    "zookeeper",
    "kafka",
];

/// Check `raw` and resolve every environment.
pub fn validate(raw: &RawPlatform) -> Result<Spec, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let root = FieldPath::root();

    check_names(raw, &mut errors);
    check_topics(raw, &mut errors, &mut warnings);
    check_routes(raw, &mut errors);
    check_databases(raw, &mut errors);
    for (name, service) in &raw.services {
        let path = root.field("services").field(name);
        check_secrets(&path.field("secrets"), &service.secrets, &mut errors);
        if service.port < 1024 {
            errors.push(Diagnostic::new(
                path.field("port"),
                Violation::PrivilegedPort { port: service.port },
            ));
        }
        check_duration(
            path.field("micro_cache"),
            "the micro-cache lifetime",
            &service.micro_cache,
            (0, "0s"),
            (60_000, "60s"),
            &mut errors,
        );
        if service.auth_endpoint && service.micro_cache != "0s" {
            errors.push(Diagnostic::new(
                path.field("micro_cache"),
                Violation::DurationOutOfRange {
                    what: "the micro-cache of an authentication endpoint",
                    value: service.micro_cache.clone(),
                    min: "0s",
                    max: "0s",
                },
            ));
        }
        if let Some(limits) = &service.order_limits {
            check_duration(
                path.field("order_limits").field("confirm_within"),
                "the confirmation window of an order",
                &limits.confirm_within,
                (1_000, "1s"),
                (7 * 86_400_000, "7d"),
                &mut errors,
            );
            check_duration(
                path.field("order_limits").field("open_for"),
                "how long a confirmed order counts as open",
                &limits.open_for,
                (60_000, "1min"),
                (30 * 86_400_000, "30d"),
                &mut errors,
            );
        }
        check_limits(&path, service, &mut errors);
        if service.admin_emails.is_some() {
            errors.push(Diagnostic::new(
                path.field("admin_emails"),
                Violation::RemovedOption {
                    why: "registering a listed address granted the admin role without proof of owning it",
                    instead: "delete the setting; an operator makes an existing account an administrator on the host with `teipsum-promote-admin --email <address>` (README, \"Deploying to a new server\", step 0)",
                },
            ));
        }
    }
    check_frontend(raw, &mut errors);
    if raw.environments.is_empty() {
        errors.push(Diagnostic::new(
            root.field("environments"),
            Violation::NoEnvironment,
        ));
    }
    let mut domains: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, environment) in &raw.environments {
        let path = root.field("environments").field(name);
        check_environment(raw, name, environment, &path, &mut errors);
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

    check_hsts_scope(raw, &mut errors);
    for (name, environment) in &raw.environments {
        if environment.kafka.mode != "kraft" {
            warnings.push(Diagnostic::new(
                root.field("environments")
                    .field(name)
                    .field("kafka")
                    .field("mode"),
                Violation::ZookeeperUnsupported,
            ));
        }
    }

    dedup(&mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let plans = raw
        .environments
        .iter()
        .map(|(name, environment)| (name.clone(), resolve(raw, name, environment)))
        .collect();
    Ok(Spec {
        name: raw.name.clone(),
        plans,
        warnings,
    })
}

/// The same problem found from two environments is reported once.
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    diagnostics.retain(|d| seen.insert((d.path.clone(), d.violation.to_string())));
}

fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

fn check_names(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
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
            if !is_name(name) {
                errors.push(Diagnostic::new(
                    root.field(field).field(name.as_str()),
                    Violation::BadName {
                        kind,
                        name: name.clone(),
                    },
                ));
            }
        }
    }
    if !is_name(&raw.name) {
        errors.push(Diagnostic::new(
            root.field("name"),
            Violation::BadName {
                kind: "platform",
                name: raw.name.clone(),
            },
        ));
    }
}

fn check_topics(raw: &RawPlatform, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) {
    let declared: Vec<String> = raw.topics.keys().cloned().collect();
    let mut produced = BTreeSet::new();
    let mut consumed = BTreeSet::new();
    for service in raw.services.values() {
        produced.extend(service.produces.iter().cloned());
        consumed.extend(service.consumes.iter().cloned());
    }
    for (name, service) in &raw.services {
        let path = FieldPath::root().field("services").field(name);
        for (list, field) in [
            (&service.produces, "produces"),
            (&service.consumes, "consumes"),
        ] {
            let mut seen = BTreeSet::new();
            for (i, topic) in list.iter().enumerate() {
                let at = path.field(field).index(i);
                if !seen.insert(topic) {
                    errors.push(Diagnostic::new(
                        at,
                        Violation::DuplicateTopic {
                            topic: topic.clone(),
                        },
                    ));
                } else if !raw.topics.contains_key(topic) {
                    errors.push(Diagnostic::new(
                        at,
                        Violation::UndeclaredTopic {
                            topic: topic.clone(),
                            declared: declared.clone(),
                        },
                    ));
                } else if field == "consumes" && !produced.contains(topic) {
                    errors.push(Diagnostic::new(
                        at,
                        Violation::TopicWithoutProducer {
                            topic: topic.clone(),
                        },
                    ));
                } else if field == "consumes" && service.produces.contains(topic) {
                    errors.push(Diagnostic::new(
                        at,
                        Violation::ConsumesOwnTopic {
                            service: name.clone(),
                            topic: topic.clone(),
                        },
                    ));
                }
            }
        }
    }
    for (name, topic) in &raw.topics {
        let path = FieldPath::root().field("topics").field(name);
        if parse_duration(&topic.retention).is_none() {
            errors.push(Diagnostic::new(
                path.field("retention"),
                Violation::BadDuration {
                    value: topic.retention.clone(),
                },
            ));
        }
        if !produced.contains(name) && !consumed.contains(name) {
            warnings.push(Diagnostic::new(
                path,
                Violation::TopicWithoutProducer {
                    topic: name.clone(),
                },
            ));
        }
    }
}

fn check_routes(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    // Every route with its owner, the storefront first: it may be `/`,
    // which deliberately sits under everything else as the fallback.
    let mut routes: Vec<(FieldPath, &str, &str)> = Vec::new();
    let frontend_path = FieldPath::root().field("frontend").field("route");
    for (name, service) in &raw.services {
        for (i, prefix) in service.routes.iter().enumerate() {
            let path = FieldPath::root()
                .field("services")
                .field(name)
                .field("routes")
                .index(i);
            if !is_route_prefix(prefix) {
                errors.push(Diagnostic::new(
                    path,
                    Violation::BadRoute {
                        prefix: prefix.clone(),
                    },
                ));
                continue;
            }
            routes.push((path, prefix, name));
        }
    }
    for (i, (path, prefix, owner)) in routes.iter().enumerate() {
        if *prefix == raw.frontend.route {
            errors.push(Diagnostic::new(
                path.clone(),
                Violation::DuplicateRoute {
                    prefix: prefix.to_string(),
                    other: "the storefront".to_owned(),
                },
            ));
        }
        for (other_path, other_prefix, other_owner) in &routes[..i] {
            if prefix == other_prefix {
                errors.push(Diagnostic::new(
                    path.clone(),
                    Violation::DuplicateRoute {
                        prefix: prefix.to_string(),
                        other: other_owner.to_string(),
                    },
                ));
            } else if other_prefix.starts_with(prefix) {
                errors.push(Diagnostic::new(
                    path.clone(),
                    Violation::ShadowedRoute {
                        prefix: prefix.to_string(),
                        shadowed: other_prefix.to_string(),
                        other: other_owner.to_string(),
                    },
                ));
            } else if prefix.starts_with(other_prefix) {
                // The earlier, shorter prefix is the one that captures.
                errors.push(Diagnostic::new(
                    other_path.clone(),
                    Violation::ShadowedRoute {
                        prefix: other_prefix.to_string(),
                        shadowed: prefix.to_string(),
                        other: owner.to_string(),
                    },
                ));
            }
        }
    }
    if !is_route_prefix(&raw.frontend.route) {
        errors.push(Diagnostic::new(
            frontend_path,
            Violation::BadRoute {
                prefix: raw.frontend.route.clone(),
            },
        ));
    }
}

/// `/`-rooted, printable, no query, fragment, whitespace or `..`.
pub fn is_route_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && !prefix.contains("..")
        && !prefix.contains("//")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
}

fn check_databases(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, service) in &raw.services {
        let path = FieldPath::root()
            .field("services")
            .field(name)
            .field("database");
        let database = service.database.as_str();
        let reason = if !is_identifier(database) {
            Some(
                "use lowercase letters, digits and `_`, starting with a letter, at most 63 characters",
            )
        } else if RESERVED_DATABASES.contains(&database) {
            Some("this name is reserved by PostgreSQL or NixOS; use e.g. `teipsum_<service>`")
        } else {
            None
        };
        if let Some(reason) = reason {
            errors.push(Diagnostic::new(
                path,
                Violation::BadDatabase {
                    database: database.to_owned(),
                    reason,
                },
            ));
        } else if let Some(other) = owners.insert(database, name) {
            errors.push(Diagnostic::new(
                path,
                Violation::DuplicateDatabase {
                    database: database.to_owned(),
                    other: other.to_owned(),
                },
            ));
        }
    }
}

/// A PostgreSQL identifier that needs no quoting and doubles as a user name.
pub fn is_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

fn check_secrets(
    path: &FieldPath,
    secrets: &BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) {
    for (name, value) in secrets {
        let at = path.field(name);
        if !is_credential_name(name) {
            errors.push(Diagnostic::new(
                at.clone(),
                Violation::BadCredentialName { name: name.clone() },
            ));
        }
        if looks_like_inline_secret(value) {
            errors.push(Diagnostic::new(
                at,
                Violation::InlineSecret { name: name.clone() },
            ));
        } else if let Some(reason) = secret_path_problem(value) {
            errors.push(Diagnostic::new(
                at,
                Violation::BadSecretPath {
                    name: name.clone(),
                    reason,
                },
            ));
        }
    }
}

/// A name systemd accepts in `LoadCredential=` (it becomes a file name).
pub fn is_credential_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether a secret "path" is really a secret value pasted into the spec.
pub fn looks_like_inline_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if lower.contains("-----begin")
        || lower.contains("private key")
        || value.contains("://")
        || value.chars().any(char::is_whitespace)
    {
        return true;
    }
    // `password=hunter2`, `token:abc`
    for marker in ["password", "passwd", "secret", "token", "apikey", "api_key"] {
        if let Some(i) = lower.find(marker) {
            let after = &lower[i + marker.len()..];
            if after.starts_with('=') || after.starts_with(':') {
                return true;
            }
        }
    }
    value.split('/').any(|component| {
        // A JWT or base64 JSON.
        component.starts_with("eyJ")
            // A long run of key material: base64/hex, no extension, mixed classes.
            || (component.len() >= 32
                && !component.contains('.')
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=_-".contains(&b))
                && component.bytes().any(|b| b.is_ascii_digit())
                && component.bytes().any(|b| b.is_ascii_uppercase())
                && component.bytes().any(|b| b.is_ascii_lowercase()))
    })
}

/// Why a secret path cannot be a host file that stays secret, if it cannot.
pub fn secret_path_problem(value: &str) -> Option<&'static str> {
    if !value.starts_with('/') {
        Some("it is not an absolute path")
    } else if value == "/nix/store" || value.starts_with("/nix/store/") {
        Some("files in /nix/store are readable by every user")
    } else if value.ends_with('/') {
        Some("it names a directory")
    } else if value.split('/').any(|c| c == ".." || c == ".") {
        Some("it contains `.` or `..` components")
    } else if value.chars().any(|c| c.is_control()) {
        Some("it contains control characters")
    } else {
        None
    }
}

fn check_frontend(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let root = &raw.frontend.root;
    if root.is_empty()
        || root.starts_with('/')
        || root.split('/').any(|c| c == ".." || c.is_empty())
        || !root
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._".contains(&b))
    {
        errors.push(Diagnostic::new(
            FieldPath::root().field("frontend").field("root"),
            Violation::BadFrontendRoot { root: root.clone() },
        ));
    }
}

fn check_email(path: &FieldPath, email: &str, errors: &mut Vec<Diagnostic>) {
    if !is_email(email) {
        errors.push(Diagnostic::new(
            path.clone(),
            Violation::BadEmail {
                email: email.to_owned(),
            },
        ));
    }
}

/// A plain `local@domain` address (no quoted local parts, no comments).
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && domain_problem(domain).is_none()
}

/// Why `domain` is not a public DNS name, if it is not.
pub fn domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("it is empty");
    }
    if domain.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("it has uppercase letters");
    }
    if domain.ends_with('.') {
        return Some("it ends with a dot");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some("it needs at least two labels, such as `example.org`");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Some("each label has 1 to 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label cannot start or end with `-`");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some("labels use only letters, digits and `-`");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("an IP address is not a domain name");
    }
    None
}

/// Seconds in a duration like `30s`, `15min`, `2h`, `7d`, `500ms` (rounded up).
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let split = value.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Whole seconds of a duration, rounded up.
pub fn parse_duration(value: &str) -> Option<u64> {
    parse_duration_ms(value).map(|ms| ms.div_ceil(1000))
}

/// Bytes of a systemd memory size (`512M`), if it is one.
fn parse_memory_size(value: &str) -> Option<u64> {
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    let shift = match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The unit's `MemoryMax=` and `TasksMax=`: small enough to be a bound,
/// large enough for a service to start.
fn check_limits(path: &FieldPath, service: &RawService, errors: &mut Vec<Diagnostic>) {
    let (min, max) = (64 << 20, 64 << 30);
    if !parse_memory_size(&service.memory_max).is_some_and(|b| (min..=max).contains(&b)) {
        errors.push(Diagnostic::new(
            path.field("memory_max"),
            Violation::LimitOutOfRange {
                what: "a service's memory limit",
                value: service.memory_max.clone(),
                min: "64M",
                max: "64G",
            },
        ));
    }
    if !(64..=65_536).contains(&service.tasks_max) {
        errors.push(Diagnostic::new(
            path.field("tasks_max"),
            Violation::LimitOutOfRange {
                what: "a service's task limit",
                value: service.tasks_max.to_string(),
                min: "64",
                max: "65536",
            },
        ));
    }
}

fn check_duration(
    path: FieldPath,
    what: &'static str,
    value: &str,
    (min, min_text): (u64, &'static str),
    (max, max_text): (u64, &'static str),
    errors: &mut Vec<Diagnostic>,
) {
    match parse_duration_ms(value) {
        None => errors.push(Diagnostic::new(
            path,
            Violation::BadDuration {
                value: value.to_owned(),
            },
        )),
        Some(ms) if ms < min || ms > max => errors.push(Diagnostic::new(
            path,
            Violation::DurationOutOfRange {
                what,
                value: value.to_owned(),
                min: min_text,
                max: max_text,
            },
        )),
        Some(_) => {}
    }
}

fn check_environment(
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
    check_email(
        &path.field("acme").field("email"),
        &environment.acme.email,
        errors,
    );

    // Hosts and placement.
    let declared: Vec<String> = environment.hosts.keys().cloned().collect();
    for host in environment.hosts.keys() {
        if !is_name(host) {
            errors.push(Diagnostic::new(
                path.field("hosts").field(host.as_str()),
                Violation::BadName {
                    kind: "host",
                    name: host.clone(),
                },
            ));
        }
    }
    let edge = edge_host(environment);
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
        } else if host != &edge {
            errors.push(Diagnostic::new(
                field,
                Violation::SplitHosts {
                    component,
                    host: host.clone(),
                    services_host: edge.clone(),
                },
            ));
        }
    }

    // Listeners: the first claimant of a port keeps it.
    let mut taken: BTreeMap<(String, u16), String> = BTreeMap::new();
    for (host, port, owner, at) in listeners(raw, environment, path) {
        if let Some(other) = taken.get(&(host.clone(), port)) {
            errors.push(Diagnostic::new(
                at,
                Violation::PortClash {
                    port,
                    host: format!("{host}` of environment `{name}"),
                    other: other.clone(),
                },
            ));
        } else {
            taken.insert((host, port), owner);
        }
    }

    for (topic_name, topic) in &raw.topics {
        // One broker per environment until multi-broker placement exists.
        let brokers = 1;
        if topic.replication_factor > brokers {
            errors.push(Diagnostic::new(
                FieldPath::root()
                    .field("topics")
                    .field(topic_name)
                    .field("replication_factor"),
                Violation::ReplicationAboveBrokers {
                    replication_factor: topic.replication_factor,
                    brokers,
                    environment: name.to_owned(),
                },
            ));
        }
    }

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

    let nginx = path.field("nginx");
    for header in REQUIRED_HEADERS {
        if !environment.nginx.security_headers.contains_key(header) {
            errors.push(Diagnostic::new(
                nginx.field("security_headers"),
                Violation::MissingSecurityHeader { header },
            ));
        }
    }
    for (header, value) in &environment.nginx.security_headers {
        if !is_header_text(header) || !is_header_text(value) || header.contains(' ') {
            errors.push(Diagnostic::new(
                nginx.field("security_headers").field(header.as_str()),
                Violation::BadHeader {
                    name: header.clone(),
                },
            ));
        }
    }
    for (field, csp) in [
        ("api_csp", &environment.nginx.api_csp),
        ("frontend_csp", &environment.nginx.frontend_csp),
    ] {
        if !is_header_text(csp) {
            errors.push(Diagnostic::new(
                nginx.field(field),
                Violation::BadHeader {
                    name: "Content-Security-Policy".to_owned(),
                },
            ));
        }
        for directive in ["'unsafe-inline'", "'unsafe-eval'"] {
            if csp.contains(directive) {
                errors.push(Diagnostic::new(
                    nginx.field(field),
                    Violation::UnsafeCsp { directive },
                ));
            }
        }
    }

    let settings = path.field("postgres").field("settings");
    for (setting, value) in &environment.postgres.settings {
        if to_setting(value).is_none() || !is_identifier(setting) {
            errors.push(Diagnostic::new(
                settings.field(setting.as_str()),
                Violation::BadSetting {
                    name: setting.clone(),
                },
            ));
        }
    }
    for (setting, value) in &environment.kafka.settings {
        if to_setting(value).is_none()
            || !setting
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        {
            errors.push(Diagnostic::new(
                path.field("kafka")
                    .field("settings")
                    .field(setting.as_str()),
                Violation::BadSetting {
                    name: setting.clone(),
                },
            ));
        }
    }

    check_duration(
        path.field("jwt").field("access_ttl"),
        "the access token lifetime",
        &environment.jwt.access_ttl,
        (60_000, "1min"),
        (900_000, "15min"),
        errors,
    );
    check_duration(
        path.field("jwt").field("refresh_ttl"),
        "the refresh token lifetime",
        &environment.jwt.refresh_ttl,
        (3_600_000, "1h"),
        (90 * 86_400_000, "90d"),
        errors,
    );
    check_duration(
        path.field("watchdog"),
        "the watchdog interval",
        &environment.watchdog,
        (2_000, "2s"),
        (600_000, "10min"),
        errors,
    );
    check_duration(
        path.field("outbox_max_lag"),
        "the outbox lag bound",
        &environment.outbox_max_lag,
        (10_000, "10s"),
        (86_400_000, "1d"),
        errors,
    );
}

/// HSTS `includeSubDomains` on one environment's domain must not cover
/// another environment served with untrusted (staging) certificates: under
/// HSTS a browser offers no click-through, so that environment would be
/// unreachable in every browser that ever visited the first.
fn check_hsts_scope(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    for (name, environment) in &raw.environments {
        let Some((header, hsts)) = environment
            .nginx
            .security_headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case("Strict-Transport-Security"))
        else {
            continue;
        };
        let covers_subdomains = hsts
            .split(';')
            .any(|d| d.trim().eq_ignore_ascii_case("includeSubDomains"));
        if !covers_subdomains {
            continue;
        }
        let suffix = format!(".{}", environment.domain);
        for (other, other_env) in &raw.environments {
            if other != name
                && other_env.domain.ends_with(&suffix)
                && other_env.acme.ca != "letsencrypt"
            {
                errors.push(Diagnostic::new(
                    FieldPath::root()
                        .field("environments")
                        .field(name)
                        .field("nginx")
                        .field("security_headers")
                        .field(header.as_str()),
                    Violation::HstsCoversUntrusted {
                        subdomain: other_env.domain.clone(),
                        other: other.clone(),
                    },
                ));
            }
        }
    }
}

/// Printable ASCII that can sit inside an nginx double-quoted string.
fn is_header_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// 16 bytes in unpadded base64url: 22 characters.
fn is_cluster_id(id: &str) -> bool {
    use base64::Engine;
    id.len() == 22
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// The host nginx and the services run on: the one named `main`, else the first.
fn edge_host(environment: &RawEnvironment) -> String {
    if environment.hosts.contains_key("main") {
        "main".to_owned()
    } else {
        environment.hosts.keys().next().cloned().unwrap_or_default()
    }
}

/// Every TCP listener of an environment, in a fixed order, with the field that declares it.
fn listeners(
    raw: &RawPlatform,
    environment: &RawEnvironment,
    path: &FieldPath,
) -> Vec<(String, u16, String, FieldPath)> {
    let edge = edge_host(environment);
    let kafka = &environment.kafka;
    let mut out = vec![
        (
            edge.clone(),
            80,
            "nginx (HTTP)".to_owned(),
            path.field("nginx"),
        ),
        (
            edge.clone(),
            443,
            "nginx (HTTPS)".to_owned(),
            path.field("nginx"),
        ),
        (
            environment.postgres.host.clone(),
            environment.postgres.port,
            "postgresql".to_owned(),
            path.field("postgres").field("port"),
        ),
        (
            kafka.host.clone(),
            kafka.port,
            "the Kafka broker".to_owned(),
            path.field("kafka").field("port"),
        ),
    ];
    if kafka.mode == "kraft" {
        out.push((
            kafka.host.clone(),
            kafka.controller_port,
            "the KRaft controller".to_owned(),
            path.field("kafka").field("controller_port"),
        ));
    } else {
        out.push((
            kafka.host.clone(),
            kafka.zookeeper_port,
            "zookeeper".to_owned(),
            path.field("kafka").field("zookeeper_port"),
        ));
    }
    for (name, service) in &raw.services {
        out.push((
            edge.clone(),
            service.port,
            format!("service `{name}`"),
            FieldPath::root()
                .field("services")
                .field(name)
                .field("port"),
        ));
    }
    out
}

fn to_setting(value: &serde_json::Value) -> Option<Setting> {
    match value {
        serde_json::Value::Bool(b) => Some(Setting::Bool(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Setting::Int)
            .or_else(|| n.as_f64().map(Setting::Float)),
        serde_json::Value::String(s) if is_header_text(s) || s.is_empty() => {
            Some(Setting::Str(s.clone()))
        }
        _ => None,
    }
}

/// A stable KRaft cluster id derived from platform and environment names.
pub fn derived_cluster_id(platform: &str, environment: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("teipsum kraft cluster {platform}/{environment}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn resolve(raw: &RawPlatform, name: &str, environment: &RawEnvironment) -> Plan {
    let platform = raw.name.clone();
    let edge = edge_host(environment);
    let loopback = "127.0.0.1".to_owned();

    let hosts = environment
        .hosts
        .iter()
        .map(|(host, h)| HostPlan {
            name: host.clone(),
            address: h.address.clone(),
            system: h.system.clone(),
        })
        .collect();

    let pg = &environment.postgres;
    let databases: Vec<DatabasePlan> = {
        let mut dbs: Vec<DatabasePlan> = raw
            .services
            .iter()
            .map(|(service, s)| DatabasePlan {
                name: s.database.clone(),
                role: s.database.clone(),
                service: service.clone(),
            })
            .collect();
        dbs.sort_by(|a, b| a.name.cmp(&b.name));
        dbs
    };
    let postgres = PostgresPlan {
        host: pg.host.clone(),
        version: pg.version,
        package: format!("postgresql_{}", pg.version),
        port: pg.port,
        socket_dir: "/run/postgresql".to_owned(),
        settings: pg
            .settings
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), to_setting(v)?)))
            .collect(),
        access: policy::access_rules(&databases),
        backup: BackupPlan {
            schedule: pg.backup.schedule.clone(),
            compression: pg.backup.compression.clone(),
            location: pg.backup.location.clone(),
            databases: databases.iter().map(|d| d.name.clone()).collect(),
        },
        databases,
    };

    let kafka = resolve_kafka(raw, name, environment);

    let mut routes: Vec<RoutePlan> = raw
        .services
        .iter()
        .flat_map(|(service, s)| {
            s.routes.iter().map(|prefix| RoutePlan {
                prefix: prefix.clone(),
                service: service.clone(),
                upstream: upstream_name(&platform, service),
                rate_limits: policy::route_limits(&platform, s.auth_endpoint, s.placement_endpoint),
                micro_cache_secs: parse_duration(&s.micro_cache).unwrap_or(0),
            })
        })
        .collect();
    routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let nginx_raw = &environment.nginx;
    let nginx = NginxPlan {
        host: edge.clone(),
        http_port: 80,
        https_port: 443,
        gzip: nginx_raw.gzip,
        client_max_body_size: nginx_raw.client_max_body_size.clone(),
        keepalive: nginx_raw.keepalive,
        server_tokens: false,
        limit_key: policy::limit_key(&platform),
        limit_status: policy::LIMIT_STATUS,
        rate_limits: policy::rate_limits(
            &platform,
            (
                &nginx_raw.auth_rate_limit.rate,
                nginx_raw.auth_rate_limit.burst,
            ),
            (
                &nginx_raw.order_rate_limit.rate,
                nginx_raw.order_rate_limit.burst,
            ),
            &routes,
        ),
        micro_cache: policy::micro_cache(&platform, &routes),
        proxy_headers: policy::proxy_headers(),
        static_locations: policy::static_locations(&raw.frontend.route, raw.frontend.spa_fallback),
        api_fallback: policy::api_fallback(&platform, &routes),
        edge_errors: policy::edge_errors(&platform),
        presets: policy::presets(nginx_raw.gzip),
        security_headers: nginx_raw
            .security_headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        api_csp: nginx_raw.api_csp.clone(),
        frontend_csp: nginx_raw.frontend_csp.clone(),
        upstreams: raw
            .services
            .iter()
            .filter(|(_, s)| !s.routes.is_empty())
            .map(|(service, s)| UpstreamPlan {
                name: upstream_name(&platform, service),
                service: service.clone(),
                servers: vec![format!("{loopback}:{}", s.port)],
            })
            .collect(),
        routes,
    };

    let watchdog_sec = parse_duration(&environment.watchdog).unwrap_or(30);
    let outbox_max_lag = parse_duration(&environment.outbox_max_lag).unwrap_or(300);
    // Consumed-event ids and idempotency keys outlive every event a topic
    // could still deliver again, with a week to spare.
    let retention_secs = raw
        .topics
        .values()
        .filter_map(|t| parse_duration(&t.retention))
        .max()
        .unwrap_or(0)
        + 7 * 86_400;
    let access_ttl = parse_duration(&environment.jwt.access_ttl).unwrap_or(900);
    let refresh_ttl = parse_duration(&environment.jwt.refresh_ttl).unwrap_or(30 * 86_400);
    let topics_unit = conventions::topics_unit(&platform);
    let jwt_key_unit = conventions::jwt_key_unit(&platform);
    let services = raw
        .services
        .iter()
        .map(|(service, s)| {
            let mut environment_vars = BTreeMap::new();
            let mut set = |k: &str, v: String| {
                environment_vars.insert(k.to_owned(), v);
            };
            set(env::SERVICE, service.clone());
            set(env::LISTEN, format!("{loopback}:{}", s.port));
            set(
                env::DATABASE,
                format!(
                    "host={} port={} dbname={} user={}",
                    postgres.socket_dir, postgres.port, s.database, s.database
                ),
            );
            set(env::KAFKA_BROKERS, kafka.bootstrap.clone());
            set(
                env::KAFKA_CLIENT_ID,
                policy::kafka_client_id(&platform, service),
            );
            set(
                env::DATABASE_CA_CREDENTIAL,
                policy::database_ca_credential(),
            );
            set(env::JWT_ISSUER, environment.jwt.issuer.clone());
            set(env::JWT_AUDIENCE, environment.jwt.audience.clone());
            set(env::LOG, environment.log_level.clone());
            let consumer_group =
                (!s.consumes.is_empty()).then(|| conventions::consumer_group(&platform, service));
            if let Some(group) = &consumer_group {
                set(env::KAFKA_GROUP, group.clone());
                let mut consumed: Vec<&String> = s.consumes.iter().collect();
                consumed.sort();
                set(
                    env::TOPIC_PRODUCERS,
                    conventions::render_producers(consumed.into_iter().map(|topic| {
                        // BTreeMap order: producers sorted by name.
                        let producers = raw
                            .services
                            .iter()
                            .filter(|(_, p)| p.produces.contains(topic))
                            .map(|(name, _)| name.as_str())
                            .collect();
                        (topic.as_str(), producers)
                    })),
                );
            }
            set(env::OUTBOX_MAX_LAG_SECS, outbox_max_lag.to_string());
            set(env::RETENTION_SECS, retention_secs.to_string());
            if s.secrets
                .contains_key(conventions::credentials::JWT_SIGNING_KEY)
            {
                set(env::ACCESS_TTL_SECS, access_ttl.to_string());
                set(env::REFRESH_TTL_SECS, refresh_ttl.to_string());
            }
            if let Some(limits) = &s.order_limits {
                set(
                    env::ORDER_MAX_UNITS,
                    limits.max_units_per_product.to_string(),
                );
                set(env::ORDER_MAX_OPEN, limits.max_open_orders.to_string());
                set(
                    env::ORDER_CONFIRM_WITHIN_SECS,
                    parse_duration(&limits.confirm_within)
                        .unwrap_or(900)
                        .to_string(),
                );
                set(
                    env::ORDER_OPEN_FOR_SECS,
                    parse_duration(&limits.open_for)
                        .unwrap_or(86_400)
                        .to_string(),
                );
            }
            let uses_kafka = !s.produces.is_empty() || !s.consumes.is_empty();
            let mut after = vec![
                "network-online.target".to_owned(),
                "postgresql.target".to_owned(),
            ];
            let mut wants = vec!["network-online.target".to_owned()];
            if uses_kafka {
                after.push(topics_unit.clone());
                wants.push(topics_unit.clone());
            }
            let uses_jwt_key = [
                conventions::credentials::JWT_SIGNING_KEY,
                conventions::credentials::JWT_PUBLIC_KEY,
            ]
            .iter()
            .any(|c| s.secrets.contains_key(*c));
            if uses_jwt_key {
                // A no-op where the host provides the key by other means.
                after.push(jwt_key_unit.clone());
                wants.push(jwt_key_unit.clone());
            }
            let mut produces = s.produces.clone();
            produces.sort();
            let mut consumes = s.consumes.clone();
            consumes.sort();
            ServicePlan {
                name: service.clone(),
                description: s.description.clone(),
                unit: conventions::unit_name(&platform, service),
                binary: conventions::binary_name(&platform, service),
                user: s.database.clone(),
                group: s.database.clone(),
                host: edge.clone(),
                address: loopback.clone(),
                port: s.port,
                database: s.database.clone(),
                role: s.database.clone(),
                routes: s.routes.clone(),
                produces,
                consumes,
                consumer_group,
                credentials: s
                    .secrets
                    .iter()
                    .map(|(name, path)| CredentialPlan {
                        name: name.clone(),
                        path: path.clone(),
                    })
                    .collect(),
                environment: environment_vars,
                kafka_client_id: policy::kafka_client_id(&platform, service),
                database_ca_credential: policy::database_ca_credential(),
                profile: policy::service_profile(watchdog_sec),
                health: s.health.clone(),
                ready: s.ready.clone(),
                after,
                wants,
                requires: vec!["postgresql.target".to_owned()],
                memory_max: s.memory_max.clone(),
                tasks_max: s.tasks_max,
            }
        })
        .collect();

    let mut listeners: Vec<Listener> = listeners(raw, environment, &FieldPath::root())
        .into_iter()
        .map(|(host, port, owner, _)| Listener { host, port, owner })
        .collect();
    listeners.sort();

    Plan {
        platform,
        environment: name.to_owned(),
        domain: environment.domain.clone(),
        hosts,
        acme: AcmePlan {
            email: environment.acme.email.clone(),
            server: match environment.acme.ca.as_str() {
                "letsencrypt_staging" => LETSENCRYPT_STAGING,
                _ => LETSENCRYPT,
            }
            .to_owned(),
            staging: environment.acme.ca == "letsencrypt_staging",
            order_restart: policy::acme_order_restart(),
        },
        postgres,
        kafka,
        nginx,
        frontend: FrontendPlan {
            root: raw.frontend.root.clone(),
            route: raw.frontend.route.clone(),
            spa_fallback: raw.frontend.spa_fallback,
        },
        services,
        listeners,
        sandbox: policy::sandbox(),
    }
}

fn upstream_name(platform: &str, service: &str) -> String {
    format!("{platform}_{}", service.replace('-', "_"))
}

fn resolve_kafka(
    raw: &RawPlatform,
    environment_name: &str,
    environment: &RawEnvironment,
) -> KafkaPlan {
    let k = &environment.kafka;
    let bootstrap = format!("127.0.0.1:{}", k.port);
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    let mut set = |key: &str, value: Setting| {
        settings.insert(key.to_owned(), value);
    };
    // Topics exist only when `teipsum topics apply` declares them: a typo
    // in a service must not create a topic nobody consumes.
    set("auto.create.topics.enable", Setting::Bool(false));
    set(
        "log.dirs",
        Setting::List(vec!["/var/lib/apache-kafka".to_owned()]),
    );
    // One broker: internal topics cannot have more replicas than that.
    set("offsets.topic.replication.factor", Setting::Int(1));
    set("transaction.state.log.replication.factor", Setting::Int(1));
    set("transaction.state.log.min.isr", Setting::Int(1));
    set("num.partitions", Setting::Int(3));
    let mode = if k.mode == "kraft" {
        let cluster_id = k
            .cluster_id
            .clone()
            .unwrap_or_else(|| derived_cluster_id(&raw.name, environment_name));
        set("node.id", Setting::Int(1));
        set(
            "process.roles",
            Setting::List(vec!["broker".to_owned(), "controller".to_owned()]),
        );
        set(
            "listeners",
            Setting::List(vec![
                format!("PLAINTEXT://127.0.0.1:{}", k.port),
                format!("CONTROLLER://127.0.0.1:{}", k.controller_port),
            ]),
        );
        set(
            "listener.security.protocol.map",
            Setting::List(vec![
                "PLAINTEXT:PLAINTEXT".to_owned(),
                "CONTROLLER:PLAINTEXT".to_owned(),
            ]),
        );
        set(
            "controller.listener.names",
            Setting::List(vec!["CONTROLLER".to_owned()]),
        );
        set(
            "controller.quorum.voters",
            Setting::List(vec![format!("1@127.0.0.1:{}", k.controller_port)]),
        );
        KafkaMode::Kraft {
            cluster_id,
            controller_port: k.controller_port,
        }
    } else {
        set("broker.id", Setting::Int(0));
        set(
            "listeners",
            Setting::List(vec![format!("PLAINTEXT://127.0.0.1:{}", k.port)]),
        );
        set(
            "zookeeper.connect",
            Setting::List(vec![format!("127.0.0.1:{}", k.zookeeper_port)]),
        );
        KafkaMode::Zookeeper {
            zookeeper_port: k.zookeeper_port,
            // The nixpkgs defaults (local JMX only) plus zkServer.sh's heap.
            zookeeper_jvm_options: vec![
                "-Dcom.sun.management.jmxremote".to_owned(),
                "-Dcom.sun.management.jmxremote.local.only=true".to_owned(),
                "-Xms512m".to_owned(),
                "-Xmx512m".to_owned(),
            ],
            zookeeper_conf: policy::zookeeper_conf(),
            zookeeper_restart: policy::coordination_restart(),
        }
    };
    for (key, value) in &k.settings {
        if let Some(value) = to_setting(value) {
            settings.insert(key.clone(), value);
        }
    }
    let (package, package_input) = match mode {
        // ZooKeeper mode ended with Kafka 3.9, which NixOS 26.05 no longer
        // ships: it comes from the second, older nixpkgs input.
        KafkaMode::Zookeeper { .. } => ("apacheKafka_3_9", PackageInput::NixpkgsKafka),
        KafkaMode::Kraft { .. } => ("apacheKafka_4_1", PackageInput::Nixpkgs),
    };
    let package = package.to_owned();

    let topics = raw
        .topics
        .iter()
        .map(|(topic, t)| {
            let producers = raw
                .services
                .iter()
                .filter(|(_, s)| s.produces.contains(topic))
                .map(|(n, _)| n.clone())
                .collect();
            let consumers = raw
                .services
                .iter()
                .filter(|(_, s)| s.consumes.contains(topic))
                .map(|(n, _)| n.clone())
                .collect();
            TopicPlan {
                name: topic.clone(),
                description: t.description.clone(),
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                retention_ms: parse_duration_ms(&t.retention).unwrap_or(7 * 86_400_000),
                cleanup_policy: t.cleanup_policy.clone(),
                producers,
                consumers,
            }
        })
        .collect();

    KafkaPlan {
        host: k.host.clone(),
        mode,
        package,
        package_input,
        // kafka-server-start.sh's KAFKA_HEAP_OPTS default.
        jvm_options: vec!["-Xms1g".to_owned(), "-Xmx1g".to_owned()],
        port: k.port,
        bootstrap,
        settings,
        topics,
        broker_restart: policy::coordination_restart(),
        topics_unit: policy::topics_unit(&raw.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_units() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("15min"), Some(900));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("500ms"), Some(1));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn domains_must_be_public_dns_names() {
        assert_eq!(domain_problem("teipsum.store"), None);
        assert_eq!(domain_problem("stage.teipsum.store"), None);
        assert!(domain_problem("localhost").is_some());
        assert!(domain_problem("Teipsum.store").is_some());
        assert!(domain_problem("teipsum.store.").is_some());
        assert!(domain_problem("-a.store").is_some());
        assert!(domain_problem("a..store").is_some());
        assert!(domain_problem("tei_psum.store").is_some());
        assert!(domain_problem("10.0.0.1").is_some());
        assert!(domain_problem(&format!("{}.store", "a".repeat(64))).is_some());
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!(is_email("ops@teipsum.store"));
        assert!(is_email("first.last+tag@teipsum.store"));
        assert!(!is_email("ops"));
        assert!(!is_email("@teipsum.store"));
        assert!(!is_email("ops@localhost"));
        assert!(!is_email("o ps@teipsum.store"));
        assert!(!is_email(".ops@teipsum.store"));
    }

    #[test]
    fn secret_values_written_inline_are_recognised() {
        assert!(looks_like_inline_secret(
            "-----BEGIN PRIVATE KEY-----MC4CAQ"
        ));
        assert!(looks_like_inline_secret("/password=hunter2"));
        assert!(looks_like_inline_secret("postgres://u:p@db/x"));
        assert!(looks_like_inline_secret("/eyJhbGciOiJFZERTQSJ9"));
        assert!(looks_like_inline_secret(
            "/Zx8a9QmP3vLw2Rt7Yk1Hn5Bc0Df4Gj6K"
        ));
        assert!(looks_like_inline_secret("hunter2 hunter2"));
        assert!(!looks_like_inline_secret(
            "/var/lib/teipsum/secrets/jwt-ed25519.key"
        ));
        assert!(!looks_like_inline_secret(
            "/run/secrets/teipsum/token-signing.pem"
        ));
        assert!(!looks_like_inline_secret(
            "/run/agenix/teipsum-jwt-ed25519-private-key-file"
        ));
    }

    #[test]
    fn secret_paths_must_be_absolute_and_outside_the_store() {
        assert_eq!(
            secret_path_problem("/var/lib/teipsum/secrets/jwt.key"),
            None
        );
        assert!(secret_path_problem("secrets/jwt.key").is_some());
        assert!(secret_path_problem("/nix/store/abc-jwt.key").is_some());
        assert!(secret_path_problem("/var/lib/../etc/shadow").is_some());
        assert!(secret_path_problem("/var/lib/teipsum/").is_some());
    }

    #[test]
    fn credential_names_are_file_names() {
        assert!(is_credential_name("jwt-public-key"));
        assert!(is_credential_name("db.pem"));
        assert!(!is_credential_name("a/b"));
        assert!(!is_credential_name(".."));
        assert!(!is_credential_name(""));
    }

    #[test]
    fn route_prefixes_are_plain_paths() {
        assert!(is_route_prefix("/api/orders/"));
        assert!(is_route_prefix("/"));
        assert!(!is_route_prefix("api/orders/"));
        assert!(!is_route_prefix("/api/../admin/"));
        assert!(!is_route_prefix("/api//orders"));
        assert!(!is_route_prefix("/api/orders?x=1"));
        assert!(!is_route_prefix("/api/ord ers"));
    }

    #[test]
    fn identifiers_are_lowercase_and_short() {
        assert!(is_identifier("teipsum_order"));
        assert!(!is_identifier("teipsum-order"));
        assert!(!is_identifier("1order"));
        assert!(!is_identifier("Order"));
        assert!(!is_identifier(&"a".repeat(64)));
    }

    #[test]
    fn derived_cluster_ids_are_stable_valid_and_distinct() {
        let prod = derived_cluster_id("teipsum", "prod");
        assert_eq!(prod, derived_cluster_id("teipsum", "prod"));
        assert!(is_cluster_id(&prod), "{prod}");
        assert_ne!(prod, derived_cluster_id("teipsum", "stage"));
    }
}
