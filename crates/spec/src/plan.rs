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
    /// Metrics and alerts, when `monitoring.enable`.
    pub monitoring: Option<MonitoringPlan>,
    /// Every TCP listener of the environment, sorted by host and port.
    pub listeners: Vec<Listener>,
    /// The systemd sandbox of every sandboxed unit (services and the
    /// topics unit), in print order.
    pub sandbox: Vec<UnitSetting>,
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
    /// Whether the CA's terms of service are accepted (`security.acme.acceptTerms`):
    /// declaring an ACME account in the spec is that acceptance.
    pub accept_terms: bool,
    /// The certificate order unit nixpkgs defines for the domain
    /// (`acme-order-renew-<domain>`, without `.service`).
    pub order_unit: String,
    /// The restart of the certificate order unit (nixpkgs sets a delay
    /// but no `Restart=`).
    pub order_restart: Restart,
    /// Ordering added to the order unit.
    pub order_ordering: UnitOrdering,
}

/// Ordering added to a unit that a NixOS module defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitOrdering {
    /// Units it starts after.
    pub after: Vec<String>,
    /// Units it pulls in softly.
    pub wants: Vec<String>,
    /// Units it cannot run without.
    pub requires: Vec<String>,
    /// Why the module's own ordering is not enough.
    pub why: String,
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
    /// Who may connect to which database, and how (`pg_hba.conf`), in
    /// the order PostgreSQL tries them.
    pub access: Vec<AccessRule>,
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

/// One `pg_hba.conf` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Connection type (`local`: the Unix socket).
    pub connection: String,
    /// Database it applies to.
    pub database: String,
    /// Role it applies to (`all` for any).
    pub user: String,
    /// Authentication method (`peer`, `reject`).
    pub method: String,
}

impl AccessRule {
    /// The line as `pg_hba.conf` reads it.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.connection, self.database, self.user, self.method
        )
    }
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
        /// zoo.cfg lines (`services.zookeeper.extraConf`), in print order.
        zookeeper_conf: Vec<Property>,
        /// The restart systemd gives ZooKeeper's unit (nixpkgs sets none).
        zookeeper_restart: Restart,
        /// Ordering added to the broker's unit: after ZooKeeper.
        broker_ordering: UnitOrdering,
    },
    /// KRaft: the broker is its own controller.
    Kraft {
        /// Stable cluster id.
        cluster_id: String,
        /// Controller listener port.
        controller_port: u16,
    },
}

/// A `name=value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Name.
    pub name: String,
    /// Value, as the file spells it.
    pub value: String,
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
    /// The restart systemd gives the broker's unit (nixpkgs sets none).
    pub broker_restart: Restart,
    /// The oneshot that creates the topics before the services start.
    pub topics_unit: TopicsUnitPlan,
}

/// The oneshot unit running `teipsum topics apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicsUnitPlan {
    /// systemd unit (`teipsum-topics.service`).
    pub unit: String,
    /// Unit description.
    pub description: String,
    /// Executable inside the package (`teipsum`).
    pub binary: String,
    /// Seconds `topics apply` waits for the broker before it fails (and
    /// systemd tries again after the restart delay).
    pub wait_secs: u64,
    /// Units it must start after.
    pub after: Vec<String>,
    /// Units it pulls in softly.
    pub wants: Vec<String>,
    /// Units it cannot run without.
    pub requires: Vec<String>,
    /// Whether systemd allocates a throw-away user for it.
    pub dynamic_user: bool,
    /// How systemd runs it.
    pub profile: UnitProfile,
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
    /// Whether nginx names its version in headers and error pages.
    pub server_tokens: bool,
    /// Whether a configuration change reloads nginx (`enableReload`)
    /// rather than restarting it and dropping connections.
    pub reload_on_change: bool,
    /// Whether the domain's certificate comes from ACME (`enableACME`).
    pub acme_certificate: bool,
    /// Whether plain HTTP only redirects to HTTPS (`forceSSL`; the ACME
    /// challenge stays on HTTP).
    pub force_tls: bool,
    /// The variable rate limits count clients by.
    pub limit_key: LimitKeyPlan,
    /// Status of a request refused by a rate limit.
    pub limit_status: u16,
    /// Rate-limit zones, in print order; routes name the ones they use.
    pub rate_limits: Vec<RateLimitPlan>,
    /// The micro-cache, when some route is cached.
    pub micro_cache: Option<CacheZonePlan>,
    /// Headers nginx sets on every proxied request.
    pub proxy_headers: Vec<Header>,
    /// The storefront's locations, in print order.
    pub static_locations: Vec<StaticLocationPlan>,
    /// The JSON answer to an API path no route serves, when the API has no
    /// route of its own at its root.
    pub api_fallback: Option<ApiFallbackPlan>,
    /// The API's OpenAPI document, which the edge serves itself.
    pub api_document: ApiDocumentPlan,
    /// Errors nginx answers itself in front of a service, as JSON.
    pub edge_errors: Vec<EdgeResponsePlan>,
    /// nginx settings NixOS's `recommended*` options stand for, spelled
    /// out for the edge that runs without NixOS (`teipsum dev`).
    pub presets: Vec<NginxPreset>,
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

/// How rate limits tell clients apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitKeyPlan {
    /// nginx variable (without `$`) holding the key.
    pub variable: String,
    /// An IPv6 client counts by this prefix of its address (an IPv4
    /// client by its whole address): one host commonly holds a whole /64.
    pub ipv6_prefix_bits: u8,
}

/// A `limit_req_zone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitPlan {
    /// Zone name.
    pub zone: String,
    /// What it protects, in words (`authentication`).
    pub purpose: String,
    /// Only requests of these methods count (empty: every request).
    pub methods: Vec<String>,
    /// Zone size (`10m` holds about 160 000 addresses).
    pub zone_size: String,
    /// `10r/s`.
    pub rate: String,
    /// Burst.
    pub burst: u32,
}

/// A `proxy_cache_path` and how locations use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheZonePlan {
    /// Zone name.
    pub name: String,
    /// Directory on the edge host.
    pub path: String,
    /// Directory levels (`1:2`).
    pub levels: String,
    /// Size of the shared memory holding the keys (`10m`).
    pub keys_size: String,
    /// Most disk space (`256m`).
    pub max_size: String,
    /// Entries unused this long are dropped (`10m`).
    pub inactive: String,
    /// Whether one request per key fills the cache while the others wait.
    pub lock: bool,
    /// When an expired copy may still be served (`proxy_cache_use_stale`).
    pub use_stale: Vec<String>,
    /// Whether an expired copy is refreshed in the background.
    pub background_update: bool,
    /// Response header telling whether the cache answered.
    pub status_header: String,
}

/// A storefront location: static files and how long browsers keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticLocationPlan {
    /// The location match (`/`, `= /index.html`).
    pub path: String,
    /// `try_files` arguments.
    pub try_files: Option<String>,
    /// `Cache-Control` of its responses.
    pub cache_control: String,
    /// Whether errors carry that `Cache-Control` too (right for
    /// `no-cache`, wrong for a year-long cache given to a 404).
    pub always: bool,
}

/// An answer nginx gives itself, in the services' JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeResponsePlan {
    /// HTTP status.
    pub status: u16,
    /// Stable error code (`NOT_FOUND`).
    pub code: String,
    /// Message for a human.
    pub message: String,
    /// Named location answering it (`@teipsum_error_502`).
    pub location: String,
}

impl EdgeResponsePlan {
    /// The JSON body: `{"error":"<code>","message":"<message>"}`.
    pub fn body(&self) -> String {
        format!(
            r#"{{"error":"{}","message":"{}"}}"#,
            self.code, self.message
        )
    }
}

/// The answer to API paths no route serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFallbackPlan {
    /// The location (`/api/`).
    pub path: String,
    /// What it answers.
    pub response: EdgeResponsePlan,
}

/// The OpenAPI document of the API (docs/openapi.json, generated from the
/// services' code by `teipsum-openapi`), served by the edge as a static
/// file: the storefront package (nix/frontend.nix) and `teipsum dev` place
/// `file` at `uri` under the storefront's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDocumentPlan {
    /// The URL it is served at (`/api/openapi.json`), an exact location.
    pub uri: String,
    /// The file, relative to the repository root (`docs/openapi.json`).
    pub file: String,
    /// `Content-Type` of the answer.
    pub content_type: String,
    /// `Cache-Control` of the answer: it changes with every deployment.
    pub cache_control: String,
}

/// A group of nginx settings NixOS enables with one option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxPreset {
    /// The `services.nginx` option (`recommendedTlsSettings`).
    pub option: String,
    /// Whether the edge uses it.
    pub enabled: bool,
    /// Why, when it matters to the rest of the edge.
    pub why: Option<String>,
    /// The http-level directives it stands for.
    pub http: Vec<String>,
    /// The directives it adds to every proxied location.
    pub proxied: Vec<String>,
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
    /// The rate-limit zones that apply, in [`NginxPlan::rate_limits`] order.
    pub rate_limits: Vec<String>,
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
    /// Port of `/metrics` on `address`, when the environment is monitored.
    pub metrics_port: Option<u16>,
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
    /// Kafka client id of its producer and consumer (`teipsum-order`).
    pub kafka_client_id: String,
    /// Credential holding the CA that signs a remote database server's
    /// certificate, when the host provides one.
    pub database_ca_credential: String,
    /// How systemd runs it (and `teipsum dev` restarts it).
    pub profile: UnitProfile,
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

/// What systemd does with a unit: its type, restarts, timeouts, sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitProfile {
    /// `Type=`.
    pub kind: UnitKind,
    /// `WatchdogSec=` in seconds, when the unit pings a watchdog.
    pub watchdog_sec: Option<u64>,
    /// What happens when it fails.
    pub restart: Restart,
    /// `TimeoutStopSec=` in seconds, when it differs from systemd's default.
    pub timeout_stop_sec: Option<u64>,
    /// Whether it runs in [`Plan::sandbox`].
    pub sandboxed: bool,
    /// Targets that pull it in (`multi-user.target`).
    pub wanted_by: Vec<String>,
}

/// `Type=` of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Ready once it says `READY=1` (and only its main process may say it).
    Notify,
    /// Runs to completion, then counts as active.
    Oneshot,
}

impl UnitKind {
    /// The systemd spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Notify => "notify",
            UnitKind::Oneshot => "oneshot",
        }
    }
}

/// When and how soon a unit is started again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// `Restart=`.
    pub policy: RestartPolicy,
    /// `RestartSec=` in milliseconds (`None`: the unit's own default).
    pub delay_ms: Option<u64>,
    /// `startLimitIntervalSec` (`Some(0)`: retry for as long as it takes).
    pub start_limit_interval_sec: Option<u64>,
    /// Why, when the reason is not obvious.
    pub why: Option<String>,
}

impl Restart {
    /// `RestartSec=` as systemd reads it (`2s`, `500ms`).
    pub fn delay(&self) -> Option<String> {
        self.delay_ms.map(|ms| {
            if ms % 1000 == 0 {
                format!("{}s", ms / 1000)
            } else {
                format!("{ms}ms")
            }
        })
    }
}

/// `Restart=` of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never.
    No,
    /// After an unclean exit, a signal, a timeout or a missed watchdog ping.
    OnFailure,
    /// Whenever it stops.
    Always,
}

impl RestartPolicy {
    /// The systemd spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }
}

/// A `[Service]` setting of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSetting {
    /// Setting name (`ProtectSystem`).
    pub name: String,
    /// Its value.
    pub value: UnitValue,
    /// Why, when the reason is not obvious.
    pub why: Option<String>,
}

/// The value of a [`UnitSetting`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UnitValue {
    /// `true` / `false`.
    Bool(bool),
    /// Text.
    Str(String),
    /// Repeated lines (an empty string resets the setting).
    List(Vec<String>),
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

/// Monitoring of an environment: what is scraped, how it is alerted, and
/// where alerts go. Everything listens on loopback of the services' host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringPlan {
    /// Listen address of every monitoring component.
    pub address: String,
    /// Prometheus.
    pub prometheus: PrometheusPlan,
    /// What Prometheus scrapes, in print order.
    pub scrape: Vec<ScrapeJob>,
    /// The exporters.
    pub exporters: ExportersPlan,
    /// Alertmanager.
    pub alertmanager: AlertmanagerPlan,
    /// The alert rules, in print order.
    pub rules: Vec<AlertGroup>,
    /// Directory the node exporter's textfile collector reads; the backup
    /// and certificate units write their timestamps there.
    pub textfile_dir: String,
    /// Databases whose dumps are watched, and the unit of each dump.
    pub backups: Vec<BackupWatch>,
    /// The certificate whose expiry is watched.
    pub certificate: CertificateWatch,
    /// Grafana and the dashboards; `None` when `monitoring.grafana.enable` is false.
    pub grafana: Option<GrafanaPlan>,
    /// The journal shipped to Loki; `None` when `monitoring.logs.enable` is false.
    pub logs: Option<LogsPlan>,
}

/// Grafana: its datasources and dashboards, all provisioned (read-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrafanaPlan {
    /// Port.
    pub port: u16,
    /// `secret_key`, as the unit sees its credential.
    pub secret_key_file: String,
    /// The `admin` password, as the unit sees its credential.
    pub admin_password_file: String,
    /// Credentials the unit loads (systemd `LoadCredential=`), sorted.
    pub credentials: Vec<CredentialPlan>,
    /// The oneshot unit that creates a missing credential file with random
    /// contents before Grafana starts (`teipsum-grafana-secrets.service`).
    pub secrets_unit: String,
    /// The datasources; the first is the default.
    pub datasources: Vec<Datasource>,
    /// Directory of the dashboard files next to the modules.
    pub dashboard_dir: String,
    /// The dashboards, in print order.
    pub dashboards: Vec<Dashboard>,
}

/// A provisioned datasource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datasource {
    /// Name shown in Grafana.
    pub name: String,
    /// Stable uid the panels refer to.
    pub uid: String,
    /// Plugin type (`prometheus`, `loki`).
    pub kind: String,
    /// URL Grafana's backend queries.
    pub url: String,
}

/// A dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Stable uid (the URL `/d/<uid>`).
    pub uid: String,
    /// Title.
    pub title: String,
    /// Panels, in reading order.
    pub panels: Vec<Panel>,
}

/// A panel: queries of one datasource, drawn one way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// How it is drawn.
    pub kind: PanelKind,
    /// The datasource's uid.
    pub datasource: String,
    /// Grafana's unit of the values (`reqps`, `s`, `percentunit`, `bytes`, `short`).
    pub unit: String,
    /// Its queries (PromQL, or LogQL for logs panels).
    pub queries: Vec<PanelQuery>,
}

/// How a panel is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PanelKind {
    /// Lines over time.
    TimeSeries,
    /// Log lines.
    Logs,
}

/// One query of a panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelQuery {
    /// The expression.
    pub expr: String,
    /// Legend template (`{{service}}`).
    pub legend: String,
}

/// The journal of the platform's units, shipped by Vector to Loki.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsPlan {
    /// Loki's HTTP port.
    pub port: u16,
    /// Loki's gRPC port.
    pub grpc_port: u16,
    /// Loki's `retention_period` (`720h`).
    pub retention: String,
    /// The units whose journal is shipped, sorted.
    pub units: Vec<String>,
    /// The labels of the one stream every line goes to. Static: Vector
    /// (0.57 and later) refuses label templates without a literal prefix,
    /// and the unit and priority are cheap to filter in the line.
    pub stream: BTreeMap<String, String>,
    /// Fields kept in each line's JSON: the unit, the priority, and the
    /// services' request, order and event ids that join lines to metrics.
    pub fields: Vec<LogField>,
}

/// A field of a shipped line and the journal field it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogField {
    /// Name in Loki.
    pub name: String,
    /// The journal's field (`_SYSTEMD_UNIT`, `F_REQUEST_ID`).
    pub journal: String,
}

/// Prometheus itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrometheusPlan {
    /// Port.
    pub port: u16,
    /// `scrape_interval` and `evaluation_interval` (`15s`).
    pub interval: String,
    /// `--storage.tsdb.retention.time` (`30d`).
    pub retention: String,
    /// File name of the generated rules next to the modules.
    pub rule_file: String,
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeJob {
    /// `job_name`.
    pub job: String,
    /// Targets, each with its own labels.
    pub targets: Vec<ScrapeTarget>,
}

/// One target of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeTarget {
    /// `host:port`.
    pub address: String,
    /// Extra labels (`service`).
    pub labels: BTreeMap<String, String>,
}

/// The exporters and what they read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportersPlan {
    /// The node exporter's port.
    pub node_port: u16,
    /// Collectors enabled beyond the defaults (`systemd`, `textfile`).
    pub node_collectors: Vec<String>,
    /// The PostgreSQL exporter's port.
    pub postgres_port: u16,
    /// The nginx exporter's port.
    pub nginx_port: u16,
    /// nginx's status page (`services.nginx.statusPage`: loopback only).
    pub nginx_status_url: String,
    /// kminion's port.
    pub kafka_port: u16,
    /// Brokers kminion reads consumer group offsets from.
    pub kafka_brokers: Vec<String>,
}

/// Alertmanager and its one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerPlan {
    /// Port.
    pub port: u16,
    /// Receiver name.
    pub receiver: String,
    /// How alerts are delivered.
    pub delivery: Delivery,
    /// Labels alerts are grouped by in one notification.
    pub group_by: Vec<String>,
    /// `group_wait`, `group_interval`, `repeat_interval`.
    pub timing: [String; 3],
    /// Credentials the unit loads (systemd `LoadCredential=`), sorted.
    pub credentials: Vec<CredentialPlan>,
}

/// How Alertmanager delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// POST to a URL read from a credential file.
    Webhook {
        /// The URL's file as the unit sees it.
        url_file: String,
    },
    /// E-mail through a smarthost with STARTTLS.
    Email {
        /// Recipient.
        to: String,
        /// Sender.
        from: String,
        /// `host:port`.
        smarthost: String,
        /// Login.
        username: Option<String>,
        /// The password's file as the unit sees it.
        password_file: Option<String>,
    },
}

/// A group of rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertGroup {
    /// Group name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<AlertRule>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    /// `alert` (`TeipsumTargetDown`).
    pub alert: String,
    /// PromQL.
    pub expr: String,
    /// `for` (`2m`), when the condition must hold that long.
    pub hold: String,
    /// `page` (someone acts now) or `ticket` (during working hours).
    pub severity: String,
    /// One line: what is wrong, with label templates.
    pub summary: String,
    /// One line: what to do first.
    pub runbook: String,
}

/// A database dump whose success is recorded for the textfile collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupWatch {
    /// Database.
    pub database: String,
    /// The dump's unit (`postgresqlBackup-teipsum_order`).
    pub unit: String,
    /// Age of the last dump that alerts (`monitoring.alerts.backup_max_age`), in seconds.
    pub max_age_secs: u64,
}

/// The certificate whose expiry is recorded after each order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateWatch {
    /// Domain.
    pub domain: String,
    /// Certificate file.
    pub path: String,
    /// The unit after whose runs it is read.
    pub unit: String,
    /// Time left that alerts (`monitoring.alerts.certificate_expiry`), in seconds.
    pub warn_secs: u64,
}
