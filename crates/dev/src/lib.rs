//! `teipsum dev`: the plan of an environment run as local processes.
//!
//! A PostgreSQL cluster (initdb) with the plan's databases and roles,
//! reached over its Unix socket with peer authentication; tansu with the
//! declared topics (the same `--topic` arguments the NixOS topics unit
//! passes); every service binary with exactly its unit's environment and
//! credential files, started again when it dies as its unit's
//! `Restart=on-failure` would; nginx with the configuration rendered from the
//! same plan as the NixOS module, on unprivileged ports with a development
//! certificate.
//!
//! [`Stack`] is also what the end-to-end tests start. The `teipsum-dev`
//! binary (`teipsum dev` runs it) is this crate's command line. The crate is
//! a development tool: it is not part of what a host runs, so the shipped
//! `teipsum` does not link it, nor the testkit it is built on.

mod admin;
mod certs;
mod error;
mod monitoring;
mod nginx;
mod prerequisites;
mod supervisor;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::MutexGuard,
    time::{Duration, Instant},
};

pub use admin::{ADMIN_FILE, DEV_ADMIN_EMAIL, DevAdmin};
pub use error::DevError;
pub use monitoring::{Monitoring, MonitoringOptions, MonitoringPorts, RULES_LEFT_OUT};
pub use prerequisites::{Prerequisites, prerequisites};
pub use supervisor::{Restart, RestartPolicy, Supervisor};
use teipsum_conventions::{credentials, env};
use teipsum_spec::{Plan, plan::ServicePlan};
pub use teipsum_testkit::Signal;
use teipsum_testkit::{
    Postgres, ServiceProcess, Tansu, TempDir, TestInstance, http_status, instance_env,
};

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plain HTTP port of nginx.
    pub http_port: u16,
    /// HTTPS port of nginx.
    pub https_port: u16,
    /// Keep state (database, keys, certificates) here across runs; a
    /// temporary directory removed at the end otherwise.
    pub state_dir: Option<PathBuf>,
    /// Where the service binaries are; next to the running program, else on PATH.
    pub bin_dir: Option<PathBuf>,
    /// The storefront's directory.
    pub frontend: PathBuf,
    /// The API's OpenAPI document (docs/openapi.json), which the edge
    /// serves at the plan's `nginx.api_document.uri`.
    pub api_document: PathBuf,
    /// Print each service's log lines behind its name.
    pub show_logs: bool,
    /// Move every service to a free port (tests that run side by side).
    pub free_ports: bool,
    /// Routes proxied like the API routes but never cached (benchmarks
    /// compare a service with a trivial upstream behind the same nginx).
    pub extra_routes: Vec<ExtraRoute>,
    /// Prometheus, Alertmanager and the exporters, when the plan monitors
    /// and Prometheus is installed.
    pub monitoring: MonitoringOptions,
}

/// A route only `teipsum dev` adds, for benchmarks.
#[derive(Debug, Clone)]
pub struct ExtraRoute {
    /// The nginx location (`/bench/trivial`, `= /bench/product`).
    pub location: String,
    /// `host:port`, or the name of a service of the plan (its port is only
    /// known once the stack has picked it).
    pub target: String,
    /// The URI part of `proxy_pass` (empty: the request's URI unchanged).
    pub uri: String,
}

/// Distinct free ports, for the edge's two (`Options::http_port`,
/// `Options::https_port`).
pub use teipsum_testkit::free_ports;

/// `plan` with its services on `ports` (one each, in order) and their
/// metrics on `metrics_ports` (one each, in order, for services that have
/// one), their upstreams, `TEIPSUM_LISTEN`, `TEIPSUM_METRICS_LISTEN` and
/// the scrape targets moved along.
pub fn with_ports(plan: &Plan, ports: &[u16], metrics_ports: &[u16]) -> Plan {
    let mut plan = plan.clone();
    for ((service, &port), &metrics_port) in plan
        .services
        .iter_mut()
        .zip(ports)
        .zip(metrics_ports.iter().chain(std::iter::repeat(&0)))
    {
        let old = format!("{}:{}", service.address, service.port);
        let new = format!("{}:{port}", service.address);
        service.port = port;
        service
            .environment
            .insert(env::LISTEN.to_owned(), new.clone());
        for upstream in plan
            .nginx
            .upstreams
            .iter_mut()
            .filter(|u| u.service == service.name)
        {
            for server in upstream.servers.iter_mut().filter(|s| **s == old) {
                *server = new.clone();
            }
        }
        if let Some(old_metrics) = service.metrics_port.filter(|_| metrics_port != 0) {
            let old = format!("{}:{old_metrics}", service.address);
            let new = format!("{}:{metrics_port}", service.address);
            service.metrics_port = Some(metrics_port);
            service
                .environment
                .insert(env::METRICS_LISTEN.to_owned(), new.clone());
            let targets = plan
                .monitoring
                .iter_mut()
                .flat_map(|m| m.scrape.iter_mut())
                .flat_map(|job| job.targets.iter_mut());
            for target in targets.filter(|t| t.address == old) {
                target.address = new.clone();
            }
        }
    }
    plan
}

/// How the supervisor treats `service`: the restart policy and delay of its
/// unit profile in the Plan, as systemd applies them on the host, with
/// systemd's default start limit where the profile sets none (`Some(0)`: no
/// limit; the burst stays systemd's).
pub fn restart_policy(service: &ServicePlan) -> RestartPolicy {
    let restart = &service.profile.restart;
    RestartPolicy {
        restart: restart.policy,
        // systemd's RestartSec= default.
        delay: Duration::from_millis(restart.delay_ms.unwrap_or(100)),
        start_limit_interval: match restart.start_limit_interval_sec {
            None => RestartPolicy::SYSTEMD_START_LIMIT_INTERVAL,
            Some(secs) => Duration::from_secs(secs),
        },
        start_limit_burst: RestartPolicy::SYSTEMD_START_LIMIT_BURST,
    }
}

/// An error and its causes on one line: `what: why: why`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where state lives: a kept directory or a temporary one.
enum State {
    Kept(PathBuf),
    Temporary(TempDir),
}

impl State {
    /// The kept directory (created, made absolute) or a new temporary one,
    /// traversable by the user PostgreSQL may run as.
    fn open(kept: Option<&Path>) -> Result<State, DevError> {
        let state = match kept {
            Some(dir) => {
                let canonical = std::fs::create_dir_all(dir)
                    .and_then(|()| dir.canonicalize())
                    .map_err(|source| DevError::StateDir {
                        path: dir.to_owned(),
                        source,
                    })?;
                State::Kept(canonical)
            }
            None => State::Temporary(TempDir::new("teipsum-dev").map_err(DevError::TempDir)?),
        };
        teipsum_testkit::os::set_mode(state.path(), 0o755).map_err(DevError::Permissions)?;
        Ok(state)
    }

    fn path(&self) -> &Path {
        match self {
            State::Kept(p) => p,
            State::Temporary(t) => t.path(),
        }
    }
}

/// The running stack. Dropping it stops everything.
pub struct Stack {
    /// The plan it runs.
    pub plan: Plan,
    /// `https://localhost:<port>`.
    pub https_base: String,
    /// `http://localhost:<port>`.
    pub http_base: String,
    /// The certificate authority of the development certificate (PEM).
    pub ca_pem: String,
    /// Where the state is.
    pub state_dir: PathBuf,
    /// The broker's bootstrap address.
    pub bootstrap: String,
    /// The database cluster.
    pub postgres: Postgres,
    /// The development administrator, when the plan has an auth service.
    pub admin: Option<DevAdmin>,
    /// Prometheus and Alertmanager, when they run.
    pub monitoring: Option<Monitoring>,
    services: Supervisor,
    nginx: Option<Child>,
    broker: Tansu,
    _state: State,
}

fn step(what: &str) {
    eprintln!("teipsum dev: {what}");
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl Stack {
    /// Start everything, print progress, and return once every service is
    /// ready and nginx accepts connections.
    pub fn start(plan: &Plan, options: &Options) -> Result<Stack, DevError> {
        // The broker's port and, with free_ports, every service's: found
        // together, so that no two are the same, and none is nginx's.
        let metrics = plan
            .services
            .iter()
            .filter(|s| s.metrics_port.is_some())
            .count();
        let monitored = plan
            .monitoring
            .as_ref()
            .filter(|_| !options.monitoring.disable && monitoring::available());
        // nginx's status page, and with free_ports the monitoring
        // components' own ports.
        let monitoring_ports = match monitored {
            Some(_) if options.free_ports => 6,
            Some(_) => 1,
            None => 0,
        };
        let wanted = 1
            + monitoring_ports
            + if options.free_ports {
                plan.services.len() + metrics
            } else {
                0
            };
        let mut ports = free_ports(wanted, &[options.http_port, options.https_port])
            .map_err(DevError::FreePort)?;
        let broker_port = ports
            .pop()
            .expect("free_ports finds as many ports as asked");
        let monitoring_ports: Vec<u16> = ports.split_off(ports.len() - monitoring_ports);
        let monitoring_ports = monitored.map(|m| match monitoring_ports[..] {
            [status, prometheus, alertmanager, node, postgres, nginx] => (
                status,
                MonitoringPorts {
                    prometheus,
                    alertmanager,
                    node,
                    postgres,
                    nginx,
                },
            ),
            [status] => (status, MonitoringPorts::of(m)),
            _ => unreachable!("one or six ports were asked for"),
        });
        let plan = if options.free_ports {
            let (service_ports, metrics_ports) = ports.split_at(plan.services.len());
            with_ports(plan, service_ports, metrics_ports)
        } else {
            plan.clone()
        };
        let programs = prerequisites(&bin_dir(options), &plan)?;
        check_ports(&plan, options, monitoring_ports.map(|(_, ports)| ports))?;
        let frontend = storefront(&options.frontend)?;
        let state = State::open(options.state_dir.as_deref())?;
        let root = state.path().to_owned();
        let frontend = web_root(&root, &frontend, &plan, &options.api_document)?;

        let (postgres, conninfo) = start_postgres(&plan, &root)?;
        let broker = start_broker(&plan, broker_port)?;
        let credentials = write_credentials(&root, &plan)?;
        let environments = environments(&plan, &conninfo, &broker.bootstrap, &credentials);
        let services = start_services(&plan, &programs, &environments, options.show_logs)?;
        let admin = match plan.services.iter().find(|s| {
            s.credentials
                .iter()
                .any(|c| c.name == credentials::JWT_SIGNING_KEY)
        }) {
            Some(auth) => Some(admin::create(
                &root,
                &services[&auth.name],
                &programs.services[&auth.name],
                &environments[&auth.name],
            )?),
            None => None,
        };
        let services = Supervisor::start(
            services
                .into_iter()
                .filter_map(|(name, process)| {
                    plan.service(&name)
                        .map(|service| (process, restart_policy(service)))
                })
                .collect(),
        );

        let status_port = monitoring_ports.map(|(status, _)| status);
        let (ca_pem, nginx) = start_nginx(
            &plan,
            options,
            &root,
            &frontend,
            &programs.nginx,
            status_port,
        )?;
        write_stack_file(&root, &plan, &postgres, &broker.bootstrap)?;
        let monitoring = match (&plan.monitoring, monitoring_ports) {
            (Some(m), Some((status, ports))) => Some(monitoring::start(
                m,
                ports,
                &options.monitoring,
                &monitoring::Site {
                    root: &root,
                    postgres: &postgres,
                    nginx_status: &format!("http://127.0.0.1:{status}/nginx_status"),
                },
            )?),
            (Some(_), None) if !options.monitoring.disable => {
                step(
                    "no Prometheus: apt-get install prometheus (scripts/setup.sh does) to monitor the stack",
                );
                None
            }
            _ => None,
        };
        Ok(Stack {
            monitoring,
            https_base: format!("https://localhost:{}", options.https_port),
            http_base: format!("http://localhost:{}", options.http_port),
            ca_pem,
            state_dir: root,
            bootstrap: broker.bootstrap.clone(),
            postgres,
            admin,
            services,
            nginx: Some(nginx),
            broker,
            _state: state,
            plan,
        })
    }

    /// A service's process, to stop, start or crash it. The supervisor waits
    /// while the guard is held. Panics on a name the plan does not have.
    pub fn service(&self, name: &str) -> MutexGuard<'_, ServiceProcess> {
        self.services
            .service(name)
            .unwrap_or_else(|| panic!("the plan has no service {name}"))
    }

    /// Stop every service (SIGTERM, drained) and keep it stopped, leaving
    /// the database, the broker and nginx running: a quiet cluster to
    /// dump or inspect. [`service`](Self::service) starts one again.
    pub fn stop_services(&self) {
        for name in self.services.names() {
            self.service(name).stop();
        }
    }

    /// Stop everything: nginx, the services (SIGTERM, drained), the broker
    /// and the database. Temporary state is removed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // First, so that nothing stopped from here on (or by the Ctrl-C the
        // whole terminal's process group received) is started again.
        self.services.stop_watching();
        if let Some(mut monitoring) = self.monitoring.take() {
            monitoring.stop();
        }
        if let Some(mut nginx) = self.nginx.take() {
            // SIGQUIT: nginx's graceful shutdown.
            let _ = teipsum_testkit::os::signal(&nginx, Signal::Quit);
            let _ = nginx.wait();
        }
        self.services.stop();
        self.broker.kill();
        self.postgres.stop();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where the service binaries are: `options.bin_dir`, else the directory of
/// the running program (cargo builds them all into one directory).
fn bin_dir(options: &Options) -> PathBuf {
    options.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned))
            .unwrap_or_default()
    })
}

/// Every port the stack listens on is free.
fn check_ports(
    plan: &Plan,
    options: &Options,
    monitoring: Option<MonitoringPorts>,
) -> Result<(), DevError> {
    let mut ports: Vec<(u16, String)> = vec![
        (options.http_port, "nginx HTTP".to_owned()),
        (options.https_port, "nginx HTTPS".to_owned()),
    ];
    ports.extend(
        plan.services
            .iter()
            .map(|s| (s.port, format!("service {}", s.name))),
    );
    ports.extend(plan.services.iter().filter_map(|s| {
        s.metrics_port
            .map(|port| (port, format!("the metrics of service {}", s.name)))
    }));
    if let Some(m) = monitoring {
        ports.extend([
            (m.prometheus, "Prometheus".to_owned()),
            (m.alertmanager, "Alertmanager".to_owned()),
            (m.node, "the node exporter".to_owned()),
            (m.postgres, "the PostgreSQL exporter".to_owned()),
            (m.nginx, "the nginx exporter".to_owned()),
        ]);
    }
    match ports.into_iter().find(|(port, _)| !port_free(*port)) {
        Some((port, what)) => Err(DevError::PortTaken { port, what }),
        None => Ok(()),
    }
}

/// The storefront's absolute path, which nginx.conf can quote.
fn storefront(path: &Path) -> Result<PathBuf, DevError> {
    if path.to_string_lossy().contains(['"', ' ']) {
        return Err(DevError::StorefrontPathUnquotable {
            path: path.to_owned(),
        });
    }
    path.canonicalize().map_err(|source| DevError::Storefront {
        path: path.to_owned(),
        source,
    })
}

/// What nginx serves from its root: the storefront's files and, at the
/// plan's `nginx.api_document.uri`, the OpenAPI document, as the
/// storefront package of a NixOS host has them (nix/frontend.nix). Links in
/// `root/www`, so that an edit of the storefront shows at once.
fn web_root(
    root: &Path,
    frontend: &Path,
    plan: &Plan,
    document: &Path,
) -> Result<PathBuf, DevError> {
    let www = root.join("www");
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| DevError::Storefront { path, source }
    };
    if www.exists() {
        std::fs::remove_dir_all(&www).map_err(failed(&www))?;
    }
    let served = www.join(plan.nginx.api_document.uri.trim_start_matches('/'));
    let parent = served.parent().unwrap_or(&www);
    std::fs::create_dir_all(parent).map_err(failed(parent))?;
    for entry in std::fs::read_dir(frontend).map_err(failed(frontend))? {
        let entry = entry.map_err(failed(frontend))?;
        let link = www.join(entry.file_name());
        if !link.exists() {
            std::os::unix::fs::symlink(entry.path(), &link).map_err(failed(&link))?;
        }
    }
    let document = document.canonicalize().map_err(failed(document))?;
    std::os::unix::fs::symlink(&document, &served).map_err(failed(&served))?;
    Ok(www)
}

/// The cluster in `root/postgres` with the plan's databases; their
/// connection strings by database name.
fn start_postgres(
    plan: &Plan,
    root: &Path,
) -> Result<(Postgres, BTreeMap<String, String>), DevError> {
    step(&format!(
        "PostgreSQL {} (state in {})",
        plan.postgres.version,
        root.display()
    ));
    let postgres = Postgres::start_in(&root.join("postgres")).map_err(DevError::Postgres)?;
    let mut conninfo = BTreeMap::new();
    for database in &plan.postgres.databases {
        let info =
            postgres
                .create_database(&database.name)
                .map_err(|source| DevError::Database {
                    name: database.name.clone(),
                    source,
                })?;
        conninfo.insert(database.name.clone(), info);
    }
    Ok((postgres, conninfo))
}

/// tansu on a free port, with the plan's topics applied by the code of
/// `teipsum topics apply`.
fn start_broker(plan: &Plan, port: u16) -> Result<Tansu, DevError> {
    step("tansu (Kafka-compatible broker)");
    let broker = Tansu::start_on(port).map_err(DevError::Broker)?;
    let topics = plan
        .kafka
        .topics
        .iter()
        .map(|t| {
            t.apply_arg()
                .parse::<teipsum_kit::kafka::TopicSpec>()
                .map_err(|message| DevError::TopicSpec {
                    topic: t.name.clone(),
                    message,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = teipsum_testkit::on_own_runtime("applied the topics", || {
        teipsum_kit::kafka::apply_topics(&broker.bootstrap, &topics, Duration::from_secs(30))
    })
    .map_err(DevError::TopicsThread)?
    .map_err(DevError::Topics)?;
    step(&format!(
        "topics: {}",
        outcomes
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(broker)
}

/// Each service's unit environment, with the local database, broker and
/// credential directory in place of the host's.
fn environments(
    plan: &Plan,
    conninfo: &BTreeMap<String, String>,
    bootstrap: &str,
    credentials: &Path,
) -> BTreeMap<String, BTreeMap<String, String>> {
    plan.services
        .iter()
        .map(|service| {
            // Every service's database is in the cluster; the Plan's
            // connection string stands if one were not.
            let database = conninfo
                .get(&service.database)
                .or_else(|| service.environment.get(env::DATABASE))
                .cloned()
                .unwrap_or_default();
            let instance = TestInstance {
                database,
                brokers: bootstrap,
                credentials: &credentials.join(&service.name),
            };
            (service.name.clone(), instance_env(service, &instance))
        })
        .collect()
}

/// Launch every service, then wait until each is ready (90 s for them all).
fn start_services(
    plan: &Plan,
    programs: &Prerequisites,
    environments: &BTreeMap<String, BTreeMap<String, String>>,
    show_logs: bool,
) -> Result<BTreeMap<String, ServiceProcess>, DevError> {
    let width = plan
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let mut services = BTreeMap::new();
    for service in &plan.services {
        let prefix = Some(if show_logs {
            format!("{:>width$} |", service.name)
        } else {
            String::new()
        });
        let mut process = ServiceProcess::new(
            &service.name,
            programs.services[&service.name].clone(),
            environments[&service.name].clone().into_iter().collect(),
            prefix,
        )
        .map_err(DevError::Service)?;
        process.launch().map_err(DevError::Service)?;
        services.insert(service.name.clone(), process);
    }
    let started = Instant::now();
    let total = services.len();
    for (n, (name, process)) in services.iter_mut().enumerate() {
        process
            .wait_ready(Duration::from_secs(90).saturating_sub(started.elapsed()))
            .map_err(DevError::Service)?;
        step(&format!("{name} ready ({}/{total})", n + 1));
    }
    Ok(services)
}

/// Render nginx.conf from the plan's edge, check it with `nginx -t`, start
/// nginx and wait until it listens; returns the development CA (PEM) and nginx.
fn start_nginx(
    plan: &Plan,
    options: &Options,
    root: &Path,
    frontend: &Path,
    program: &Path,
    status_port: Option<u16>,
) -> Result<(String, Child), DevError> {
    let (ca_pem, cert, key) = certs::development_certificate(root, &plan.domain)?;
    let nginx_dir = root.join("nginx");
    let cache_dir = nginx_dir.join("cache");
    // Workers may run as another user than the master.
    make_dir(&cache_dir, 0o777)?;
    for tmp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        make_dir(&nginx_dir.join("tmp").join(tmp), 0o777)?;
    }
    let mut edge = nginx::local_edge(plan, &cache_dir);
    add_extra_routes(&mut edge, plan, &options.extra_routes)?;
    let mime = PathBuf::from("/etc/nginx/mime.types");
    let conf = nginx::render(
        plan,
        &edge,
        &nginx::DevEdge {
            http_port: options.http_port,
            https_port: options.https_port,
            certificate: &cert,
            key: &key,
            root: frontend,
            state: &nginx_dir,
            mime_types: mime.exists().then_some(mime.as_path()),
            domain: &plan.domain,
            status_port,
        },
    );
    let conf_path = nginx_dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|source| DevError::NginxConf {
        path: conf_path.clone(),
        source,
    })?;
    let test = Command::new(program)
        .arg("-t")
        .arg("-q")
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(&nginx_dir)
        .output()
        .map_err(|source| DevError::NginxSpawn {
            program: program.to_owned(),
            source,
        })?;
    if !test.status.success() {
        return Err(DevError::NginxRejected {
            conf: conf_path,
            stderr: String::from_utf8_lossy(&test.stderr).into_owned(),
        });
    }
    step(&format!(
        "nginx on https://localhost:{}",
        options.https_port
    ));
    let mut nginx = Command::new(program)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(&nginx_dir)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| DevError::NginxSpawn {
            program: program.to_owned(),
            source,
        })?;
    let waited = Instant::now();
    let patience = Duration::from_secs(10);
    while http_status(options.http_port, "/").is_none() {
        if waited.elapsed() > patience {
            let _ = nginx.kill();
            let _ = nginx.wait();
            return Err(DevError::NginxNotListening {
                port: options.http_port,
                waited: patience,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((ca_pem, nginx))
}

/// What `teipsum status --dev <state>` reads: the plan this run runs (its
/// ports moved where they are), the cluster's socket and the broker.
pub const STACK_FILE: &str = "stack.json";

fn write_stack_file(
    root: &Path,
    plan: &Plan,
    postgres: &Postgres,
    bootstrap: &str,
) -> Result<(), DevError> {
    let path = root.join(STACK_FILE);
    let stack = serde_json::json!({
        "plan": plan,
        "postgres": { "socket_dir": postgres.socket_dir, "port": postgres.port },
        "bootstrap": bootstrap,
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&stack).expect("plans serialize"),
    )
    .map_err(|source| DevError::StackFile { path, source })
}

/// `mkdir -p dir && chmod mode dir`.
fn make_dir(dir: &Path, mode: u32) -> Result<(), DevError> {
    std::fs::create_dir_all(dir).map_err(|source| DevError::NginxDir {
        path: dir.to_owned(),
        source,
    })?;
    teipsum_testkit::os::set_mode(dir, mode).map_err(DevError::Permissions)
}

/// The benchmark routes: proxied like the plan's first API route, without
/// its rate limit and cache.
fn add_extra_routes(
    edge: &mut teipsum_nixgen::edge::Edge,
    plan: &Plan,
    routes: &[ExtraRoute],
) -> Result<(), DevError> {
    for (n, route) in routes.iter().enumerate() {
        let server = match plan.service(&route.target) {
            Some(service) => format!("{}:{}", service.address, service.port),
            None => route.target.clone(),
        };
        let name = format!("extra_{n}");
        edge.upstreams.push(teipsum_nixgen::edge::Upstream {
            name: name.clone(),
            servers: vec![server],
            directives: vec![format!("keepalive {};", plan.nginx.keepalive)],
        });
        let template = edge
            .locations
            .iter()
            .find(|l| l.proxy_pass.is_some())
            .cloned()
            .ok_or_else(|| DevError::NoApiRoute {
                location: route.location.clone(),
            })?;
        edge.locations.push(teipsum_nixgen::edge::Location {
            path: route.location.clone(),
            proxy_pass: Some(format!("http://{name}{}", route.uri)),
            try_files: None,
            directives: template
                .directives
                .into_iter()
                .filter(|d| {
                    !d.starts_with("limit_req")
                        && !d.starts_with("proxy_cache")
                        && !d.contains("X-Cache-Status")
                })
                .collect(),
        });
    }
    Ok(())
}

/// One credential directory per service, with only the files its unit
/// loads; the token key pair is made once and kept with the state.
fn write_credentials(root: &Path, plan: &Plan) -> Result<PathBuf, DevError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| DevError::Credentials { path, source }
    };
    let dir = root.join("credentials");
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).map_err(failed(&keys))?;
    let private = keys.join("jwt-ed25519.key");
    let public = keys.join("jwt-ed25519.pub");
    if !private.exists() {
        let (private_pem, public_pem) = teipsum_kit::jwt::generate_keypair();
        std::fs::write(&private, private_pem).map_err(failed(&private))?;
        std::fs::write(&public, public_pem).map_err(failed(&public))?;
    }
    for service in &plan.services {
        let service_dir = dir.join(&service.name);
        std::fs::create_dir_all(&service_dir).map_err(failed(&service_dir))?;
        for credential in &service.credentials {
            let source = match credential.name.as_str() {
                credentials::JWT_SIGNING_KEY => &private,
                credentials::JWT_PUBLIC_KEY => &public,
                other => {
                    return Err(DevError::UnknownCredential {
                        service: service.name.clone(),
                        name: other.to_owned(),
                    });
                }
            };
            let target = service_dir.join(&credential.name);
            std::fs::copy(source, &target).map_err(failed(&target))?;
        }
    }
    Ok(dir)
}
