//! What can be wrong with a spec, and where.
//!
//! Every problem is a [`Diagnostic`]: a [`FieldPath`] into the spec
//! (`services.order.consumes[1]`), a structured [`Violation`] saying what is
//! wrong, a hint saying what would be valid, and, when Nickel found it, the
//! source location and Nickel's own report.

use std::fmt;

use serde::Serialize;

/// A path to a value in the spec, as a user would write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(Vec<Segment>);

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A record field.
    Field(String),
    /// An array element.
    Index(usize),
}

impl FieldPath {
    /// The root of the spec.
    pub fn root() -> Self {
        Self::default()
    }

    /// A path from dot-separated field names (no indices).
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| Segment::Field(s.to_owned()))
                .collect(),
        )
    }

    /// This path extended by a field.
    pub fn field(&self, name: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Field(name.into()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The segments of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(the spec)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_identifier(name) {
                        f.write_str(name)?;
                    } else {
                        write!(f, "\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Nickel's identifier syntax (plus `-`, which Nickel allows after the first character).
fn is_bare_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '\'')
}

/// A position in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File name as Nickel knows it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What is wrong. Each variant is one rule of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Nickel rejected the value (a contract, a missing field, a syntax error...).
    #[error("{message}")]
    Nickel {
        /// `contract`, `missing-field`, `syntax`, `import` or `nickel` (anything else).
        kind: &'static str,
        /// Nickel's message, with the contract's own explanation.
        message: String,
        /// Nickel's notes (hints, "did you mean").
        notes: Vec<String>,
    },
    /// The exported value does not fit the compiler's model.
    #[error("{message}")]
    Shape {
        /// serde's message.
        message: String,
    },
    /// A record key (service, topic, environment or host name) has the wrong syntax.
    #[error("`{name}` is not a valid {kind} name")]
    BadName {
        /// What the key names.
        kind: &'static str,
        /// The key.
        name: String,
    },
    /// A topic is used but not declared.
    #[error("topic `{topic}` is not declared in `topics`")]
    UndeclaredTopic {
        /// The topic used.
        topic: String,
        /// The declared topics.
        declared: Vec<String>,
    },
    /// A consumed topic has no producer.
    #[error("topic `{topic}` is consumed but no service produces it")]
    TopicWithoutProducer {
        /// The topic.
        topic: String,
    },
    /// A topic appears twice in one list.
    #[error("topic `{topic}` is listed twice")]
    DuplicateTopic {
        /// The topic.
        topic: String,
    },
    /// A service consumes a topic it produces.
    #[error("service `{service}` consumes `{topic}`, which it produces itself")]
    ConsumesOwnTopic {
        /// The service.
        service: String,
        /// The topic.
        topic: String,
    },
    /// More replicas than brokers.
    #[error(
        "replication factor {replication_factor} needs {replication_factor} brokers, but environment `{environment}` has {brokers}"
    )]
    ReplicationAboveBrokers {
        /// The topic's factor.
        replication_factor: u16,
        /// Brokers of the environment.
        brokers: u16,
        /// The environment.
        environment: String,
    },
    /// Two listeners want the same port on one host.
    #[error("port {port} on host `{host}` is already used by {other}")]
    PortClash {
        /// The port.
        port: u16,
        /// The host.
        host: String,
        /// Who else listens there.
        other: String,
    },
    /// A service port below 1024 (services run without capabilities).
    #[error(
        "port {port} is privileged; services run without capabilities and need a port of 1024 or more"
    )]
    PrivilegedPort {
        /// The port.
        port: u16,
    },
    /// Two routes with the same prefix.
    #[error("route `{prefix}` is already routed to {other}")]
    DuplicateRoute {
        /// The prefix.
        prefix: String,
        /// Who has it: ``service `auth` `` or `the storefront`.
        other: String,
    },
    /// A route prefix that captures another one.
    #[error("route `{prefix}` shadows `{shadowed}` of service `{other}`")]
    ShadowedRoute {
        /// The shorter prefix.
        prefix: String,
        /// The longer prefix it captures.
        shadowed: String,
        /// The service of the longer prefix.
        other: String,
    },
    /// Route prefix that is syntactically wrong.
    #[error("route `{prefix}` is not a valid URL path prefix")]
    BadRoute {
        /// The prefix.
        prefix: String,
    },
    /// A database (role) name used twice.
    #[error("database `{database}` is already used by service `{other}`")]
    DuplicateDatabase {
        /// The name.
        database: String,
        /// The service that has it.
        other: String,
    },
    /// A database name that is not a safe identifier.
    #[error("`{database}` is not a usable database and role name")]
    BadDatabase {
        /// The name.
        database: String,
        /// Why.
        reason: &'static str,
    },
    /// A secret that is not a path to a host file.
    #[error("secret `{name}` is not the path of a file on the host: {reason}")]
    BadSecretPath {
        /// Credential name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A value that looks like an inline secret.
    #[error("secret `{name}` looks like a secret value written inline")]
    InlineSecret {
        /// Credential name.
        name: String,
    },
    /// A credential name systemd would refuse.
    #[error("`{name}` is not a valid credential name")]
    BadCredentialName {
        /// The name.
        name: String,
    },
    /// A bad domain name.
    #[error("`{domain}` is not a valid domain name: {reason}")]
    BadDomain {
        /// The value.
        domain: String,
        /// Why.
        reason: &'static str,
    },
    /// A bad e-mail address.
    #[error("`{email}` is not a valid e-mail address")]
    BadEmail {
        /// The value.
        email: String,
    },
    /// Two environments on the same domain.
    #[error("domain `{domain}` is already used by environment `{other}`")]
    DuplicateDomain {
        /// The domain.
        domain: String,
        /// The other environment.
        other: String,
    },
    /// HSTS with `includeSubDomains` over a subdomain whose certificates no
    /// browser trusts: a browser that saw the header refuses that subdomain
    /// with no way past.
    #[error(
        "`includeSubDomains` covers `{subdomain}` (environment `{other}`), whose certificates browsers do not trust"
    )]
    HstsCoversUntrusted {
        /// The subdomain served by the other environment.
        subdomain: String,
        /// The environment that serves it.
        other: String,
    },
    /// ZooKeeper mode: it runs on Kafka 3.9, which is past upstream support.
    #[error(
        "Kafka in ZooKeeper mode runs on Kafka 3.9, taken from the second nixpkgs input (`nixpkgs-kafka`): Kafka 4 removed ZooKeeper and 3.9 no longer gets upstream fixes"
    )]
    ZookeeperUnsupported,
    /// A reference to a host that is not declared.
    #[error("host `{host}` is not declared in this environment's `hosts`")]
    UnknownHost {
        /// The host.
        host: String,
        /// Declared hosts.
        declared: Vec<String>,
    },
    /// Components placed on different hosts (not rendered yet).
    #[error(
        "`{component}` is on host `{host}` but the services run on `{services_host}`; multi-host environments are not rendered yet"
    )]
    SplitHosts {
        /// What is placed elsewhere.
        component: &'static str,
        /// Its host.
        host: String,
        /// Where the services run.
        services_host: String,
    },
    /// A duration out of its allowed range.
    #[error("{what} must be between {min} and {max}, not `{value}`")]
    DurationOutOfRange {
        /// What the duration is.
        what: &'static str,
        /// The value written.
        value: String,
        /// Lower bound, human-readable.
        min: &'static str,
        /// Upper bound, human-readable.
        max: &'static str,
    },
    /// A resource limit of a unit out of its allowed range.
    #[error("{what} must be between {min} and {max}, not `{value}`")]
    LimitOutOfRange {
        /// What the limit is.
        what: &'static str,
        /// The value written.
        value: String,
        /// Lower bound, human-readable.
        min: &'static str,
        /// Upper bound, human-readable.
        max: &'static str,
    },
    /// A monitored environment without exactly one way to deliver alerts.
    #[error("{problem}")]
    BadReceiver {
        /// What is wrong.
        problem: &'static str,
    },
    /// A latency objective between two histogram bounds, which no query can
    /// count exactly.
    #[error("`{value}` is not one of the request duration histogram's bounds")]
    LatencyNotABucket {
        /// The value written.
        value: String,
    },
    /// A secret file a component needs that the spec does not name.
    #[error("{needed_by} needs `{name}`")]
    MissingSecretFile {
        /// The field.
        name: String,
        /// Who reads it.
        needed_by: &'static str,
    },
    /// A duration that must be whole days.
    #[error("{what} must be whole days, not `{value}`")]
    NotWholeDays {
        /// What it is.
        what: &'static str,
        /// The value written.
        value: String,
    },
    /// A KRaft cluster id with the wrong shape.
    #[error("`{cluster_id}` is not a KRaft cluster id")]
    BadClusterId {
        /// The value.
        cluster_id: String,
    },
    /// A header value nginx could not carry.
    #[error("header `{name}` has a value nginx cannot send")]
    BadHeader {
        /// Header name.
        name: String,
    },
    /// A Content-Security-Policy that allows inline or eval'd scripts.
    #[error("the Content-Security-Policy allows `{directive}`")]
    UnsafeCsp {
        /// The offending keyword.
        directive: &'static str,
    },
    /// A mandatory security header is missing.
    #[error("security header `{header}` is missing")]
    MissingSecurityHeader {
        /// The header.
        header: &'static str,
    },
    /// Storefront directory outside the repository.
    #[error("`{root}` is not a directory inside the repository")]
    BadFrontendRoot {
        /// The value.
        root: String,
    },
    /// No environment declared.
    #[error("no environment is declared")]
    NoEnvironment,
    /// An option that no longer exists is set (like NixOS's `mkRemovedOptionModule`).
    #[error("this option has been removed: {why}")]
    RemovedOption {
        /// Why it went.
        why: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    /// A setting nginx or PostgreSQL would not accept.
    #[error("setting `{name}` has a value that cannot be written safely")]
    BadSetting {
        /// Setting name.
        name: String,
    },
}

impl Violation {
    /// A short stable identifier of the rule, for tooling and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::Nickel { kind, .. } => kind,
            Violation::Shape { .. } => "shape",
            Violation::BadName { .. } => "bad-name",
            Violation::UndeclaredTopic { .. } => "undeclared-topic",
            Violation::TopicWithoutProducer { .. } => "topic-without-producer",
            Violation::DuplicateTopic { .. } => "duplicate-topic",
            Violation::ConsumesOwnTopic { .. } => "consumes-own-topic",
            Violation::ReplicationAboveBrokers { .. } => "replication-above-brokers",
            Violation::PortClash { .. } => "port-clash",
            Violation::PrivilegedPort { .. } => "privileged-port",
            Violation::DuplicateRoute { .. } => "duplicate-route",
            Violation::ShadowedRoute { .. } => "shadowed-route",
            Violation::BadRoute { .. } => "bad-route",
            Violation::DuplicateDatabase { .. } => "duplicate-database",
            Violation::BadDatabase { .. } => "bad-database",
            Violation::BadSecretPath { .. } => "bad-secret-path",
            Violation::InlineSecret { .. } => "inline-secret",
            Violation::BadCredentialName { .. } => "bad-credential-name",
            Violation::BadDomain { .. } => "bad-domain",
            Violation::BadEmail { .. } => "bad-email",
            Violation::DuplicateDomain { .. } => "duplicate-domain",
            Violation::HstsCoversUntrusted { .. } => "hsts-covers-untrusted",
            Violation::ZookeeperUnsupported => "zookeeper-unsupported",
            Violation::UnknownHost { .. } => "unknown-host",
            Violation::SplitHosts { .. } => "split-hosts",
            Violation::DurationOutOfRange { .. } => "duration-out-of-range",
            Violation::LimitOutOfRange { .. } => "limit-out-of-range",
            Violation::BadReceiver { .. } => "bad-receiver",
            Violation::LatencyNotABucket { .. } => "latency-not-a-bucket",
            Violation::MissingSecretFile { .. } => "missing-secret-file",
            Violation::NotWholeDays { .. } => "not-whole-days",
            Violation::BadClusterId { .. } => "bad-cluster-id",
            Violation::BadHeader { .. } => "bad-header",
            Violation::UnsafeCsp { .. } => "unsafe-csp",
            Violation::MissingSecurityHeader { .. } => "missing-security-header",
            Violation::BadFrontendRoot { .. } => "bad-frontend-root",
            Violation::NoEnvironment => "no-environment",
            Violation::RemovedOption { .. } => "removed-option",
            Violation::BadSetting { .. } => "bad-setting",
        }
    }

    /// What would be valid instead.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Violation::Nickel { notes, .. } => {
                return (!notes.is_empty()).then(|| notes.join("\n"));
            }
            Violation::Shape { .. } => {
                "platform.ncl allows this value but the compiler cannot represent it: change the value, or rebuild teipsum from this repository if platform.ncl changed"
                    .to_owned()
            }
            Violation::BadName { kind, .. } => format!(
                "a {kind} name is lowercase letters, digits and `-`, starting with a letter"
            ),
            Violation::UndeclaredTopic { declared, .. } => {
                format!("declare it in `topics`, or use one of: {}", declared.join(", "))
            }
            Violation::TopicWithoutProducer { topic } => {
                format!("add `{topic}` to the `produces` of the service that publishes it")
            }
            Violation::DuplicateTopic { .. } => "list each topic once".to_owned(),
            Violation::ConsumesOwnTopic { .. } => {
                "a service applies its own events in the transaction that creates them".to_owned()
            }
            Violation::ReplicationAboveBrokers { brokers, .. } => {
                format!("use a replication factor of at most {brokers}")
            }
            Violation::PortClash { .. } => "choose a port no other listener uses".to_owned(),
            Violation::PrivilegedPort { .. } => "use a port from 1024 to 65535".to_owned(),
            Violation::DuplicateRoute { .. } => "give each route its own prefix".to_owned(),
            Violation::ShadowedRoute { .. } => {
                "make the prefixes disjoint, e.g. `/api/orders/` and `/api/order-items/`"
                    .to_owned()
            }
            Violation::BadRoute { .. } => {
                "a prefix starts with `/` and has no spaces, `?`, `#` or `..`".to_owned()
            }
            Violation::DuplicateDatabase { .. } => {
                "each service owns its own database; choose another name".to_owned()
            }
            Violation::BadDatabase { reason, .. } => (*reason).to_owned(),
            Violation::BadSecretPath { .. } => {
                "write the absolute path of a file outside /nix/store, e.g. `/var/lib/teipsum/secrets/jwt-ed25519.key`".to_owned()
            }
            Violation::InlineSecret { .. } => {
                "put the value in a file on the host (mode 0400) and write that file's path here; secrets never belong in the spec or the Nix store".to_owned()
            }
            Violation::BadCredentialName { .. } => {
                "use letters, digits, `-`, `_` and `.` (it becomes a file name in $CREDENTIALS_DIRECTORY)".to_owned()
            }
            Violation::BadDomain { .. } => {
                "write a lowercase DNS name such as `teipsum.store`".to_owned()
            }
            Violation::BadEmail { .. } => "write an address such as `ops@teipsum.store`".to_owned(),
            Violation::DuplicateDomain { .. } => {
                "each environment needs its own domain (and certificate)".to_owned()
            }
            Violation::HstsCoversUntrusted { .. } => {
                "drop `includeSubDomains` from `Strict-Transport-Security`, or give the subdomain trusted certificates".to_owned()
            }
            Violation::ZookeeperUnsupported => {
                "move to `kafka.mode = 'kraft` (README: \"From ZooKeeper to KRaft on a running host\")".to_owned()
            }
            Violation::UnknownHost { declared, .. } => {
                format!("use one of: {}", declared.join(", "))
            }
            Violation::SplitHosts { services_host, .. } => {
                format!("place it on `{services_host}` for now")
            }
            Violation::DurationOutOfRange { .. } | Violation::LimitOutOfRange { .. } => {
                return None;
            }
            Violation::BadReceiver { .. } => {
                "set `monitoring.receiver.webhook_url_file` (a file holding the URL) or `monitoring.receiver.email`, not both; or `monitoring.enable = false`".to_owned()
            }
            Violation::MissingSecretFile { name, .. } => format!(
                "set `{name}` to a file on the host (`/var/lib/teipsum/secrets/...`; made on first boot when missing), or `monitoring.grafana.enable = false`"
            ),
            Violation::NotWholeDays { .. } => "write it in days: `30d`".to_owned(),
            Violation::LatencyNotABucket { .. } => format!(
                "use one of: {}",
                teipsum_conventions::metrics::DURATION_BUCKETS
                    .iter()
                    .map(|b| {
                        let ms = (b * 1000.0).round() as u64;
                        if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Violation::BadClusterId { .. } => {
                "22 characters of base64url (16 random bytes), as `kafka-storage.sh random-uuid` prints; or leave it out to derive one".to_owned()
            }
            Violation::BadHeader { .. } => {
                "header values are printable ASCII without quotes or line breaks".to_owned()
            }
            Violation::UnsafeCsp { .. } => {
                "serve scripts and styles from files; drop the keyword".to_owned()
            }
            Violation::MissingSecurityHeader { header } => {
                format!("add `{header}` to `nginx.security_headers`")
            }
            Violation::BadFrontendRoot { .. } => {
                "write a relative path such as `frontend`".to_owned()
            }
            Violation::NoEnvironment => "declare at least `environments.prod`".to_owned(),
            Violation::RemovedOption { instead, .. } => (*instead).to_owned(),
            Violation::BadSetting { .. } => {
                "use printable characters without quotes or line breaks".to_owned()
            }
        };
        Some(hint)
    }
}

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the spec.
    pub path: FieldPath,
    /// What is wrong.
    pub violation: Violation,
    /// Where in the source, when Nickel knows.
    pub location: Option<Location>,
    /// Nickel's full report with source snippets, when Nickel found the problem.
    pub report: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of the compiler's own checks.
    pub fn new(path: FieldPath, violation: Violation) -> Self {
        Self {
            path,
            violation,
            location: None,
            report: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.violation)?;
        if let Some(location) = &self.location {
            write!(f, "\n  --> {location}")?;
        }
        if let Some(hint) = self.violation.hint() {
            for line in hint.lines() {
                write!(f, "\n  hint: {line}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Diagnostic", 5)?;
        s.serialize_field("path", &self.path)?;
        s.serialize_field("code", self.violation.code())?;
        s.serialize_field("message", &self.violation.to_string())?;
        s.serialize_field("hint", &self.violation.hint())?;
        s.serialize_field("location", &self.location)?;
        s.end()
    }
}

/// How serious a list of diagnostics is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The spec is rejected: nothing is written.
    Error,
    /// Allowed, but probably unintended.
    Warning,
}

/// The diagnostics as `teipsum check` prints them (without colour): each
/// with its rule code, path, message, location, hints and Nickel's report,
/// then, for errors, a last line saying that nothing was written.
pub fn render(file: &std::path::Path, diagnostics: &[Diagnostic], severity: Severity) -> String {
    use std::fmt::Write;
    let word = match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "{word}[{}]: {d}", d.violation.code());
        if let Some(report) = &d.report {
            // Nickel's report shows the source lines; indent it under ours.
            for line in report.trim_end().lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
        out.push('\n');
    }
    if severity == Severity::Error {
        let _ = writeln!(
            out,
            "{}: {} problem{} found; nothing was written",
            file.display(),
            diagnostics.len(),
            if diagnostics.len() == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_a_user_writes_them() {
        let path = FieldPath::root()
            .field("services")
            .field("order")
            .field("consumes")
            .index(1);
        assert_eq!(path.to_string(), "services.order.consumes[1]");
        let quoted = FieldPath::root()
            .field("nginx")
            .field("security_headers")
            .field("X Frame");
        assert_eq!(quoted.to_string(), "nginx.security_headers.\"X Frame\"");
        assert_eq!(FieldPath::root().to_string(), "(the spec)");
    }

    #[test]
    fn every_rule_has_a_hint_but_range_errors_which_carry_their_bounds() {
        let v = Violation::UndeclaredTopic {
            topic: "x".into(),
            declared: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            v.hint().unwrap(),
            "declare it in `topics`, or use one of: a, b"
        );
        assert_eq!(v.code(), "undeclared-topic");
    }
}
