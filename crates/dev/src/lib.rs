//! `teipsum dev`: the plan of an environment run as local processes.
//!
//! A PostgreSQL cluster (initdb) with the plan's databases and roles,
//! reached over its Unix socket with peer authentication; tansu with the
//! declared topics (`topics apply`, the code the NixOS unit runs); every
//! service binary with exactly its unit's environment and credential files;
//! nginx with the configuration rendered from the same plan as the NixOS
//! module, on unprivileged ports with a development certificate.
//!
//! [`Stack`] is also what the end-to-end tests start.

pub mod certs;
pub mod nginx;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use teipsum_conventions::{credentials, env};
use teipsum_spec::Plan;
use teipsum_testkit::{Postgres, ServiceProcess, Tansu, TempDir, free_port, http_status};

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
    /// Where the service binaries are; next to `teipsum`, else on PATH.
    pub bin_dir: Option<PathBuf>,
    /// The storefront's directory.
    pub frontend: PathBuf,
    /// Print each service's log lines behind its name.
    pub show_logs: bool,
    /// Move every service to a free port (tests that run side by side).
    pub free_ports: bool,
    /// Routes proxied like the API routes but never cached (benchmarks
    /// compare a service with a trivial upstream behind the same nginx).
    pub extra_routes: Vec<ExtraRoute>,
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

/// `plan` with every service on a free port, its upstream and its
/// `TEIPSUM_LISTEN` moved along.
pub fn with_free_ports(plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    for service in &mut plan.services {
        let port = free_port();
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
    }
    plan
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A program the stack needs is not installed.
    #[error("{program} is missing: {hint}")]
    Missing {
        /// What.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// A port the plan needs is taken.
    #[error(
        "port {port} ({what}) is already in use; stop what listens there or choose another port"
    )]
    PortTaken {
        /// The port.
        port: u16,
        /// Who needs it.
        what: String,
    },
    /// The plan asks for a credential `teipsum dev` cannot make up.
    #[error("service {service} needs credential `{name}`, which teipsum dev cannot generate")]
    UnknownCredential {
        /// Service.
        service: String,
        /// Credential.
        name: String,
    },
    /// Something failed along the way.
    #[error("{0}")]
    Failed(String),
}

/// The programs the stack runs, with how to install them.
pub fn prerequisites(bin_dir: &Path, plan: &Plan) -> Result<Prerequisites, DevError> {
    let missing = |program: &str, hint: &str| DevError::Missing {
        program: program.to_owned(),
        hint: hint.to_owned(),
    };
    let pg_bin = ["15", "16", "17"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
        .find(|d| d.join("initdb").exists())
        .or_else(|| std::env::var("TEIPSUM_PG_BIN").ok().map(PathBuf::from))
        .ok_or_else(|| {
            missing(
                "PostgreSQL (initdb, postgres)",
                "apt-get install postgresql-15, or set TEIPSUM_PG_BIN",
            )
        })?;
    let nginx = which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
        .ok_or_else(|| missing("nginx", "apt-get install nginx"))?;
    let tansu = which("tansu")
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
                .filter(|p| p.exists())
        })
        .ok_or_else(|| missing("tansu", "cargo install tansu --version 0.6.0 --locked --features dynostore (scripts/setup.sh)"))?;
    let mut services = BTreeMap::new();
    for service in &plan.services {
        let path = bin_dir.join(&service.binary);
        let path = if path.exists() {
            path
        } else {
            which(&service.binary).ok_or_else(|| {
                missing(
                    &service.binary,
                    "build the workspace first: cargo build --workspace (scripts/dev.sh does)",
                )
            })?
        };
        services.insert(service.name.clone(), path);
    }
    Ok(Prerequisites {
        pg_bin,
        nginx,
        tansu,
        services,
    })
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Prerequisites {
    /// PostgreSQL server binaries.
    pub pg_bin: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// tansu.
    pub tansu: PathBuf,
    /// Service binaries by service name.
    pub services: BTreeMap<String, PathBuf>,
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Where state lives: a kept directory or a temporary one.
enum State {
    Kept(PathBuf),
    Temporary(TempDir),
}

impl State {
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
    /// Services by name.
    pub services: BTreeMap<String, ServiceProcess>,
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
        let moved;
        let plan = if options.free_ports {
            moved = with_free_ports(plan);
            &moved
        } else {
            plan
        };
        let bin_dir = options.bin_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_owned))
                .unwrap_or_default()
        });
        let programs = prerequisites(&bin_dir, plan)?;
        let mut ports: Vec<(u16, String)> = vec![
            (options.http_port, "nginx HTTP".to_owned()),
            (options.https_port, "nginx HTTPS".to_owned()),
        ];
        ports.extend(
            plan.services
                .iter()
                .map(|s| (s.port, format!("service {}", s.name))),
        );
        for (port, what) in ports {
            if !port_free(port) {
                return Err(DevError::PortTaken { port, what });
            }
        }
        if options.frontend.to_string_lossy().contains(['"', ' ']) {
            return Err(DevError::Failed(format!(
                "the storefront path {} has a space or quote",
                options.frontend.display()
            )));
        }

        let state = match &options.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DevError::Failed(format!("{}: {e}", dir.display())))?;
                State::Kept(
                    dir.canonicalize()
                        .map_err(|e| DevError::Failed(e.to_string()))?,
                )
            }
            None => State::Temporary(TempDir::new("teipsum-dev")),
        };
        let root = state.path().to_owned();
        // SAFETY-free: the PostgreSQL path is read by testkit through the environment.
        // The state directory must be traversable by the postgres user.
        let _ = Command::new("chmod").arg("0755").arg(&root).status();

        step(&format!(
            "PostgreSQL {} (state in {})",
            plan.postgres.version,
            root.display()
        ));
        let postgres = Postgres::start_in(&root.join("postgres"));
        let mut conninfo = BTreeMap::new();
        for database in &plan.postgres.databases {
            postgres.create_database(&database.name);
            conninfo.insert(database.name.clone(), postgres.conninfo(&database.name));
        }

        step("tansu (Kafka-compatible broker)");
        let broker = Tansu::start_on(free_port());
        let topics = crate::commands::topic_specs(plan);
        // A thread of its own: the caller may itself be inside a runtime.
        let bootstrap = broker.bootstrap.clone();
        let outcomes = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| DevError::Failed(e.to_string()))?
                        .block_on(teipsum_kit::kafka::apply_topics(
                            &bootstrap,
                            &topics,
                            Duration::from_secs(30),
                        ))
                        .map_err(|e| DevError::Failed(format!("topics: {e}")))
                })
                .join()
                .map_err(|_| DevError::Failed("the topics thread panicked".to_owned()))?
        })?;
        step(&format!(
            "topics: {}",
            outcomes
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));

        let credentials = write_credentials(&root, plan)?;
        let mut services = BTreeMap::new();
        let mut environments = BTreeMap::new();
        for service in &plan.services {
            let mut environment = service.environment.clone();
            environment.insert(
                env::DATABASE.to_owned(),
                conninfo[&service.database].clone(),
            );
            environment.insert(env::KAFKA_BROKERS.to_owned(), broker.bootstrap.clone());
            environment.insert(
                env::CREDENTIALS_DIR.to_owned(),
                credentials.join(&service.name).display().to_string(),
            );
            let width = plan
                .services
                .iter()
                .map(|s| s.name.len())
                .max()
                .unwrap_or(0);
            let prefix = Some(if options.show_logs {
                format!("{:>width$} |", service.name)
            } else {
                String::new()
            });
            let mut process = ServiceProcess::new(
                &service.name,
                programs.services[&service.name].clone(),
                environment.clone().into_iter().collect(),
                prefix,
            );
            environments.insert(service.name.clone(), environment);
            process.launch();
            services.insert(service.name.clone(), process);
        }
        let started = Instant::now();
        let total = services.len();
        for (n, (name, process)) in services.iter_mut().enumerate() {
            process
                .wait_ready(Duration::from_secs(90).saturating_sub(started.elapsed()))
                .map_err(DevError::Failed)?;
            step(&format!("{name} ready ({}/{total})", n + 1));
        }
        let admin = match plan.services.iter().find(|s| {
            s.credentials
                .iter()
                .any(|c| c.name == credentials::JWT_SIGNING_KEY)
        }) {
            Some(auth) => Some(create_admin(
                &root,
                &services[&auth.name],
                &programs.services[&auth.name],
                &environments[&auth.name],
            )?),
            None => None,
        };

        let (ca_pem, cert, key) = certs::development_certificate(&root, &plan.domain)?;
        let nginx_dir = root.join("nginx");
        let cache_dir = nginx_dir.join("cache");
        std::fs::create_dir_all(&cache_dir).map_err(|e| DevError::Failed(e.to_string()))?;
        let _ = Command::new("chmod").arg("0777").arg(&cache_dir).status();
        let mut edge = teipsum_nixgen::edge::edge(plan, &cache_dir.display().to_string());
        for (n, route) in options.extra_routes.iter().enumerate() {
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
                .ok_or_else(|| DevError::Failed("the plan has no API route to copy".to_owned()))?;
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
        for tmp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let dir = nginx_dir.join("tmp").join(tmp);
            std::fs::create_dir_all(&dir).map_err(|e| DevError::Failed(e.to_string()))?;
            // Workers may run as another user than the master.
            let _ = Command::new("chmod").arg("0777").arg(&dir).status();
        }
        let mime = PathBuf::from("/etc/nginx/mime.types");
        let frontend = options.frontend.canonicalize().map_err(|e| {
            DevError::Failed(format!("storefront {}: {e}", options.frontend.display()))
        })?;
        let conf = nginx::render(
            &edge,
            &nginx::DevEdge {
                http_port: options.http_port,
                https_port: options.https_port,
                certificate: &cert,
                key: &key,
                root: &frontend,
                state: &nginx_dir,
                mime_types: mime.exists().then_some(mime.as_path()),
                domain: &plan.domain,
            },
        );
        let conf_path = nginx_dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| DevError::Failed(e.to_string()))?;
        let test = Command::new(&programs.nginx)
            .arg("-t")
            .arg("-q")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&nginx_dir)
            .output()
            .map_err(|e| DevError::Failed(format!("nginx -t: {e}")))?;
        if !test.status.success() {
            return Err(DevError::Failed(format!(
                "nginx -t rejected the rendered configuration ({}):\n{}",
                conf_path.display(),
                String::from_utf8_lossy(&test.stderr)
            )));
        }
        step(&format!(
            "nginx on https://localhost:{}",
            options.https_port
        ));
        let nginx_child = Command::new(&programs.nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&nginx_dir)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| DevError::Failed(format!("nginx: {e}")))?;
        let waited = Instant::now();
        while http_status(options.http_port, "/").is_none() {
            if waited.elapsed() > Duration::from_secs(10) {
                return Err(DevError::Failed("nginx did not start listening".to_owned()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Stack {
            plan: plan.clone(),
            services,
            https_base: format!("https://localhost:{}", options.https_port),
            http_base: format!("http://localhost:{}", options.http_port),
            ca_pem,
            state_dir: root,
            bootstrap: broker.bootstrap.clone(),
            postgres,
            admin,
            nginx: Some(nginx_child),
            broker,
            _state: state,
        })
    }

    /// A service's process, to stop or start it.
    pub fn service(&mut self, name: &str) -> &mut ServiceProcess {
        self.services
            .get_mut(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Stop everything: nginx, the services (SIGTERM, drained), the broker
    /// and the database. Temporary state is removed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut nginx) = self.nginx.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &nginx.id().to_string()])
                .status();
            let _ = nginx.wait();
        }
        for process in self.services.values_mut() {
            process.stop();
        }
        self.broker.kill();
        self.postgres.stop();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The address of the development administrator.
pub const DEV_ADMIN_EMAIL: &str = "admin@teipsum.test";

/// The file in the state directory with the development administrator's
/// address and password (JSON, mode 0600), for scripts that drive the stack.
pub const ADMIN_FILE: &str = "admin.json";

/// The development administrator's credentials.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevAdmin {
    /// Its address ([`DEV_ADMIN_EMAIL`]).
    pub email: String,
    /// Its password: random, made when the state directory was.
    pub password: String,
}

/// Create the development administrator the way an operator creates the
/// first one on a host: register a customer over HTTP, then promote it with
/// `teipsum-auth promote-admin` run with the auth unit's environment. A kept
/// state directory keeps its administrator and password ([`ADMIN_FILE`]);
/// a fresh one gets a new random password.
fn create_admin(
    root: &Path,
    auth: &ServiceProcess,
    binary: &Path,
    environment: &BTreeMap<String, String>,
) -> Result<DevAdmin, DevError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        DevError::Failed(format!("the development admin: {what}: {e}"))
    };
    let file = root.join(ADMIN_FILE);
    let kept: Option<DevAdmin> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let admin = match &kept {
        Some(admin) => admin.clone(),
        None => DevAdmin {
            email: DEV_ADMIN_EMAIL.to_owned(),
            password: random_password().map_err(|e| failed("randomness", &e))?,
        },
    };
    let body = serde_json::json!({
        "email": admin.email,
        "password": admin.password,
        "display_name": "Development admin",
    });
    let status = post_json(auth.port, "/api/auth/register", &body.to_string())
        .map_err(|e| failed("registering", &e))?;
    match (status, &kept) {
        (201, _) | (409, Some(_)) => {}
        (409, None) => {
            return Err(DevError::Failed(format!(
                "the development admin: {} exists in this state directory without {}; remove the state directory",
                admin.email,
                file.display()
            )));
        }
        (other, _) => return Err(failed("registering", &format!("HTTP {other}"))),
    }
    step(&format!(
        "teipsum-auth promote-admin --email {}",
        admin.email
    ));
    let promoted = Command::new(binary)
        .args(["promote-admin", "--email", &admin.email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(environment)
        .output()
        .map_err(|e| failed("promote-admin", &e))?;
    if !promoted.status.success() {
        return Err(failed(
            "promote-admin",
            &String::from_utf8_lossy(&promoted.stderr).trim(),
        ));
    }
    if kept.is_none() {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(&admin).map_err(|e| failed("JSON", &e))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| failed(&file.display().to_string(), &e))?;
    }
    Ok(admin)
}

/// 144 random bits as 36 hexadecimal digits.
fn random_password() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `POST path` with a JSON body to 127.0.0.1:`port`; the status.
fn post_json(port: u16, path: &str, body: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:.80}")))
}

/// One credential directory per service, with only the files its unit
/// loads; the token key pair is made once and kept with the state.
fn write_credentials(root: &Path, plan: &Plan) -> Result<PathBuf, DevError> {
    let dir = root.join("credentials");
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).map_err(|e| DevError::Failed(e.to_string()))?;
    let private = keys.join("jwt-ed25519.key");
    let public = keys.join("jwt-ed25519.pub");
    if !private.exists() {
        let (private_pem, public_pem) = teipsum_kit::jwt::generate_keypair();
        std::fs::write(&private, private_pem).map_err(|e| DevError::Failed(e.to_string()))?;
        std::fs::write(&public, public_pem).map_err(|e| DevError::Failed(e.to_string()))?;
    }
    for service in &plan.services {
        let service_dir = dir.join(&service.name);
        std::fs::create_dir_all(&service_dir).map_err(|e| DevError::Failed(e.to_string()))?;
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
            std::fs::copy(source, service_dir.join(&credential.name))
                .map_err(|e| DevError::Failed(e.to_string()))?;
        }
    }
    Ok(dir)
}
