//! The resolved plan of one environment: everything a renderer needs, explicit.
//!
//! A [`Plan`] is produced only from a spec that passed every check, and it is
//! the one source every renderer reads (NixOS modules, `teipsum dev`, graphs,
//! `explain`). Renderers print it; they never decide policy. Every collection
//! is ordered (sorted maps, vectors in a stated order) so that output built
//! from a plan is byte-for-byte deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One environment, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Platform name (`teipsum`): prefix of units, users and groups.
    pub platform: String,
    /// Environment name (`prod`).
    pub environment: String,
    /// Public DNS name.
    pub domain: String,
    /// Machines, sorted by name.
    pub hosts: Vec<HostPlan>,
    /// Certificates.
    pub acme: AcmePlan,
    /// The database server and its databases.
    pub postgres: PostgresPlan,
    /// The broker, its coordination and its topics.
    pub kafka: KafkaPlan,
    /// The edge.
    pub nginx: NginxPlan,
    /// The storefront.
    pub frontend: FrontendPlan,
    /// Services, sorted by name.
    pub services: Vec<ServicePlan>,
    /// Every TCP listener of the environment, sorted by host and port.
    pub listeners: Vec<Listener>,
}

impl Plan {
    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicPlan> {
        self.kafka.topics.iter().find(|t| t.name == name)
    }
}

/// A machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlan {
    /// Name in the spec.
    pub name: String,
    /// Address other hosts use.
    pub address: String,
    /// Nix system (`x86_64-linux`).
    pub system: String,
}

/// Let's Encrypt account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmePlan {
    /// Contact e-mail.
    pub email: String,
    /// ACME directory URL.
    pub server: String,
    /// Whether the CA issues untrusted staging certificates.
    pub staging: bool,
}

/// A postgresql.conf / server.properties value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Setting {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integer number.
    Float(f64),
    /// Text.
    Str(String),
    /// A list (Kafka joins it with commas).
    List(Vec<String>),
}

/// PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostgresPlan {
    /// Host it runs on.
    pub host: String,
    /// Major version.
    pub version: u8,
    /// nixpkgs attribute of the pinned package (`postgresql_15`).
    pub package: String,
    /// TCP port (also names the socket file `.s.PGSQL.<port>`).
    pub port: u16,
    /// Directory of the Unix socket services connect through.
    pub socket_dir: String,
    /// postgresql.conf settings from the spec.
    pub settings: BTreeMap<String, Setting>,
    /// One database per service, sorted by name.
    pub databases: Vec<DatabasePlan>,
    /// Dumps.
    pub backup: BackupPlan,
}

/// A database and the role that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabasePlan {
    /// Database name.
    pub name: String,
    /// Owning role; equal to `name` and to the service's system user (peer authentication).
    pub role: String,
    /// The service that owns it.
    pub service: String,
}

/// `services.postgresqlBackup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPlan {
    /// systemd calendar event.
    pub schedule: String,
    /// `none`, `gzip` or `zstd`.
    pub compression: String,
    /// Dump directory.
    pub location: String,
    /// Databases dumped, sorted.
    pub databases: Vec<String>,
}

/// How Kafka coordinates itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum KafkaMode {
    /// Kafka 3.9 with a ZooKeeper ensemble of one.
    Zookeeper {
        /// ZooKeeper client port.
        zookeeper_port: u16,
        /// ZooKeeper's JVM options (`services.zookeeper.extraCmdLineOptions`).
        zookeeper_jvm_options: Vec<String>,
    },
    /// KRaft: the broker is its own controller.
    Kraft {
        /// Stable cluster id.
        cluster_id: String,
        /// Controller listener port.
        controller_port: u16,
    },
}

/// Which pinned nixpkgs a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackageInput {
    /// The release the hosts run (`inputs.nixpkgs`).
    #[serde(rename = "nixpkgs")]
    Nixpkgs,
    /// The older release pinned only for Kafka 3.9, the last Kafka with
    /// ZooKeeper (`inputs.nixpkgs-kafka`); the hosts read it as
    /// `config.teipsum.nixpkgsKafka.<package>`.
    #[serde(rename = "nixpkgs-kafka")]
    NixpkgsKafka,
}

/// The broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaPlan {
    /// Host it runs on.
    pub host: String,
    /// Coordination mode.
    #[serde(flatten)]
    pub mode: KafkaMode,
    /// nixpkgs attribute of the pinned package.
    pub package: String,
    /// The flake input whose nixpkgs provides [`KafkaPlan::package`].
    pub package_input: PackageInput,
    /// The broker's JVM options: a fixed heap, as Kafka's own start script
    /// sets (the NixOS unit runs java directly, which would take a quarter
    /// of the host's memory).
    pub jvm_options: Vec<String>,
    /// Broker listener port.
    pub port: u16,
    /// `host:port` clients bootstrap from.
    pub bootstrap: String,
    /// Complete server.properties, including the listeners and log dirs.
    pub settings: BTreeMap<String, Setting>,
    /// Topics, sorted by name.
    pub topics: Vec<TopicPlan>,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPlan {
    /// Topic name.
    pub name: String,
    /// What it carries.
    pub description: String,
    /// Partition count (only ever grown).
    pub partitions: u32,
    /// Replicas.
    pub replication_factor: u16,
    /// `retention.ms`.
    pub retention_ms: u64,
    /// `cleanup.policy`: `delete` or `compact` (which keeps every event for
    /// `retention_ms`, then the latest of each key).
    pub cleanup_policy: String,
    /// Services producing to it, sorted.
    pub producers: Vec<String>,
    /// Services consuming it, sorted.
    pub consumers: Vec<String>,
}

impl TopicPlan {
    /// The topic as `teipsum topics apply --topic` takes it,
    /// `name:partitions:replication:retention_ms:cleanup_policy`: what the
    /// topics unit passes on a host, and what `topics apply --env` and
    /// `teipsum dev` apply from the plan.
    pub fn apply_arg(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.name,
            self.partitions,
            self.replication_factor,
            self.retention_ms,
            self.cleanup_policy
        )
    }
}

/// The nginx edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxPlan {
    /// Host it runs on.
    pub host: String,
    /// Plain HTTP port (redirects and ACME challenges only).
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// gzip text responses.
    pub gzip: bool,
    /// Request body limit (`client_max_body_size`).
    pub client_max_body_size: String,
    /// Idle keepalive connections per upstream.
    pub keepalive: u32,
    /// `limit_req` on authentication routes.
    pub auth_rate_limit: RateLimitPlan,
    /// `limit_req` on `POST`s that place orders.
    pub order_rate_limit: RateLimitPlan,
    /// Headers on every response, sorted by name.
    pub security_headers: Vec<Header>,
    /// CSP of API responses.
    pub api_csp: String,
    /// CSP of the storefront.
    pub frontend_csp: String,
    /// One upstream per service, sorted by name.
    pub upstreams: Vec<UpstreamPlan>,
    /// API routes, sorted by prefix.
    pub routes: Vec<RoutePlan>,
}

/// A `limit_req_zone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitPlan {
    /// Zone name.
    pub zone: String,
    /// Zone size (`10m` holds about 160 000 addresses).
    pub zone_size: String,
    /// `10r/s`.
    pub rate: String,
    /// Burst.
    pub burst: u32,
}

/// An HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// An nginx upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamPlan {
    /// Upstream name (`teipsum_order`).
    pub name: String,
    /// The service behind it.
    pub service: String,
    /// `address:port` of each replica.
    pub servers: Vec<String>,
}

/// A URL prefix routed to a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// URL prefix.
    pub prefix: String,
    /// Service that answers it.
    pub service: String,
    /// nginx upstream name.
    pub upstream: String,
    /// Whether the authentication rate limit applies.
    pub rate_limited: bool,
    /// Whether the order placement limit applies to its `POST`s.
    pub placement_limited: bool,
    /// Seconds nginx may answer from its micro-cache (0: not cached).
    pub micro_cache_secs: u64,
}

/// The storefront.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendPlan {
    /// Directory, relative to the repository root.
    pub root: String,
    /// URL prefix.
    pub route: String,
    /// Serve index.html for unknown paths.
    pub spa_fallback: bool,
}

/// A credential handed to a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialPlan {
    /// Name inside `$CREDENTIALS_DIRECTORY`.
    pub name: String,
    /// Host file it is loaded from.
    pub path: String,
}

/// A service, resolved for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePlan {
    /// Name in the spec (`order`).
    pub name: String,
    /// Unit description.
    pub description: String,
    /// systemd unit (`teipsum-order.service`).
    pub unit: String,
    /// Executable (`teipsum-order`).
    pub binary: String,
    /// System user; equal to the database role (peer authentication).
    pub user: String,
    /// System group.
    pub group: String,
    /// Host it runs on.
    pub host: String,
    /// Listen address (always loopback: nginx is the only way in).
    pub address: String,
    /// Listen port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Role.
    pub role: String,
    /// URL prefixes routed to it.
    pub routes: Vec<String>,
    /// Topics produced, sorted.
    pub produces: Vec<String>,
    /// Topics consumed, sorted.
    pub consumes: Vec<String>,
    /// Consumer group, when it consumes anything.
    pub consumer_group: Option<String>,
    /// Credentials, sorted by name.
    pub credentials: Vec<CredentialPlan>,
    /// Non-secret settings, exactly as the unit's `Environment=`.
    pub environment: BTreeMap<String, String>,
    /// systemd `WatchdogSec` in seconds.
    pub watchdog_sec: u64,
    /// Liveness path.
    pub health: String,
    /// Readiness path.
    pub ready: String,
    /// Units it must start after.
    pub after: Vec<String>,
    /// Units it pulls in softly.
    pub wants: Vec<String>,
    /// Units it cannot run without.
    pub requires: Vec<String>,
    /// systemd `MemoryMax=` (`512M`).
    pub memory_max: String,
    /// systemd `TasksMax=`.
    pub tasks_max: u32,
}

/// A TCP listener.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Listener {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Who listens (`service order`, `postgresql`).
    pub owner: String,
}
