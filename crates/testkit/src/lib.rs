//! Throw-away infrastructure for tests: a PostgreSQL cluster from `initdb`
//! and a tansu broker, each on its own socket or port, removed on drop.
//!
//! The cluster is set up as on a NixOS host: clients connect over the Unix
//! socket with peer authentication, each database owned by a role of the
//! same name; the test's OS user is mapped to those roles (`pg_ident.conf`),
//! since tests do not run as one system user per service.
//!
//! Every public function returns a [`Result`] whose [`Error`] names what
//! failed; tests call `.expect("...")`, `teipsum dev` reports the error.

mod error;
pub mod metrics;
pub mod os;

mod plan_env;

pub use plan_env::{
    PlanEnvError, TEST_ENVIRONMENT, TestInstance, committed_plan, config_file, instance_env,
    metrics_listen, plan_service_env, plan_setting, plan_topics, service_env,
};

use std::{
    collections::VecDeque,
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use error::io;
pub use error::{Error, Result};
pub use os::Signal;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
};

/// Where the free ports are taken from: below Linux's ephemeral range
/// (`ip_local_port_range`, 32768–60999), from which every outgoing
/// connection's local port comes, so that none of the many connections of
/// a running stack takes a port between its choice and its use.
const FREE_PORTS: std::ops::Range<u16> = 20000..32768;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16> {
    free_ports(1, &[]).map(|ports| ports[0])
}

/// `n` distinct free TCP ports on 127.0.0.1, none of them in `except`
/// (ports already promised elsewhere): every one stays bound until all are
/// found, so no two are the same. Another process may still take one
/// before it is used; picking them one at a time with [`free_port`] can
/// return the same port twice.
pub fn free_ports(n: usize, except: &[u16]) -> Result<Vec<u16>> {
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let span = FREE_PORTS.end - FREE_PORTS.start;
    // A different start in each process, so that tests starting side by
    // side do not try the same ports in the same order.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let start = (seed % u32::from(span)) as u16;
    for step in 0..span {
        if ports.len() == n {
            break;
        }
        let port = FREE_PORTS.start + (start + step) % span;
        if except.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            ports.push(port);
            held.push(listener);
        }
    }
    if ports.len() < n {
        return Err(Error::NoFreePort(std::io::Error::other(format!(
            "fewer than {n} free ports in {FREE_PORTS:?}"
        ))));
    }
    Ok(ports)
}

/// The environment variable naming the directory of PostgreSQL's server
/// binaries (`initdb`, `postgres`, `psql`).
pub const PG_BIN_VAR: &str = "TEIPSUM_PG_BIN";

/// The directory of PostgreSQL's server binaries, for the tests and
/// `teipsum dev` alike. The first that applies wins:
///
/// 1. `$TEIPSUM_PG_BIN`, when set (an error if it has no `initdb`): an
///    explicit choice beats every guess;
/// 2. Debian's `/usr/lib/postgresql/{15,16,17}/bin`, oldest first (the hosts
///    run 15);
/// 3. the directory of an `initdb` on `PATH` (the Nix dev shell's PostgreSQL).
pub fn postgres_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(Error::PostgresBinDirInvalid { dir })
        };
    }
    ["15", "16", "17"]
        .iter()
        .map(|version| PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
        .find(|dir| dir.join("initdb").is_file())
        .or_else(|| which("initdb").and_then(|p| p.parent().map(Path::to_owned)))
        .ok_or(Error::PostgresMissing)
}

/// The first `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// The system user PostgreSQL runs as when the tests run as root.
const POSTGRES_USER: &str = "postgres";

/// A command run as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root), as ourselves otherwise. std changes the user (and drops
/// root's supplementary groups) in the child just before exec, so the child
/// we hold is PostgreSQL itself and our signals (SIGINT for a fast shutdown)
/// reach it; `runuser` would stay in between and let the postmaster outlive
/// the test.
fn as_postgres(program: &Path) -> Result<Command> {
    let mut command = Command::new(program);
    if os::is_root() {
        let (uid, gid) = os::system_user(POSTGRES_USER)?;
        command.uid(uid).gid(gid);
    }
    Ok(command)
}

fn chown_postgres(path: &Path) -> Result<()> {
    if os::is_root() {
        let (uid, gid) = os::system_user(POSTGRES_USER)?;
        os::chown_recursive(path, uid, gid)?;
    }
    Ok(())
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system temp dir.
    pub fn new(prefix: &str) -> Result<TempDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(io("creating", &path))?;
        Ok(TempDir(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct Postgres {
    /// Removed on drop when the cluster is throw-away.
    _temp: Option<TempDir>,
    root: PathBuf,
    /// Directory of the Unix socket (`host=` in connection strings).
    pub socket_dir: PathBuf,
    /// Port (names the socket file; TCP is off).
    pub port: u16,
    child: Option<Child>,
    user: String,
    bin: PathBuf,
}

impl Postgres {
    /// Create and start a throw-away cluster (about a second).
    pub fn start() -> Result<Postgres> {
        let temp = TempDir::new("teipsum-pg")?;
        let root = temp.path().to_owned();
        let mut pg = Self::start_in(&root)?;
        pg._temp = Some(temp);
        Ok(pg)
    }

    /// Start the cluster kept in `root` (created on first use; its data
    /// survives the process, for `teipsum dev --state-dir`).
    pub fn start_in(root: &Path) -> Result<Postgres> {
        let bin = postgres_bin_dir()?;
        let data = root.join("data");
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir).map_err(io("creating", &socket_dir))?;
        let user = os::current_user()?;
        if !data.join("PG_VERSION").exists() {
            chown_postgres(root)?;
            let initdb = bin.join("initdb");
            let init = as_postgres(&initdb)?
                .args(["-D"])
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=peer",
                    "--auth-host=reject",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|source| Error::Spawn {
                    program: initdb.clone(),
                    hint: None,
                    source,
                })?;
            if !init.status.success() {
                return Err(Error::Initdb {
                    data,
                    status: init.status,
                    stderr: String::from_utf8_lossy(&init.stderr).into_owned(),
                });
            }
            // Peer authentication with a map: the OS user running the tests
            // (or `teipsum dev`) may act as the superuser and as every
            // service role created later.
            let hba = data.join("pg_hba.conf");
            std::fs::write(&hba, "local all all peer map=teipsum\n")
                .map_err(io("writing", &hba))?;
            let ident = data.join("pg_ident.conf");
            std::fs::write(
                &ident,
                format!("teipsum {user} postgres\nteipsum postgres postgres\n"),
            )
            .map_err(io("writing", &ident))?;
        }
        chown_postgres(root)?;
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let port = 5432;
        let postgres = bin.join("postgres");
        let child = as_postgres(&postgres)?
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&socket_dir)
            .args([
                "-c",
                "listen_addresses=",
                // Durability is not what these clusters are for.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "log_min_messages=warning",
                // So that a test can count the statements a request runs.
                "-c",
                "shared_preload_libraries=pg_stat_statements",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: postgres,
                hint: None,
                source,
            })?;
        let mut pg = Postgres {
            _temp: None,
            root: root.to_owned(),
            socket_dir,
            port,
            child: Some(child),
            user,
            bin,
        };
        pg.wait_ready()?;
        Ok(pg)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let patience = Duration::from_secs(30);
        loop {
            if self.psql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            if started.elapsed() > patience {
                // Do not leave a half-started server behind.
                self.kill();
                return Err(Error::PostgresNotReady {
                    socket_dir: self.socket_dir.clone(),
                    waited: patience,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run SQL as the superuser in `database`, returning psql's output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let psql = self.bin.join("psql");
        let out = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .map_err(|source| Error::Spawn {
                program: psql,
                hint: None,
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(Error::Psql {
                database: database.to_owned(),
                sql: sql.to_owned(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// Create a database owned by a role of the same name, reachable by the
    /// test's OS user through peer authentication; returns its connection string.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let exists = |sql: String| -> Result<bool> { Ok(self.psql("postgres", &sql)? == "1") };
        if !exists(format!("SELECT 1 FROM pg_roles WHERE rolname = '{name}'"))? {
            self.psql("postgres", &format!("CREATE ROLE \"{name}\" LOGIN"))?;
        }
        if !exists(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))? {
            self.psql(
                "postgres",
                &format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""),
            )?;
        }
        let ident = self.root.join("data/pg_ident.conf");
        let mut text = std::fs::read_to_string(&ident).map_err(io("reading", &ident))?;
        let line = format!("teipsum {} {name}\n", self.user);
        if !text.contains(&line) {
            text.push_str(&line);
            std::fs::write(&ident, text).map_err(io("writing", &ident))?;
            self.psql("postgres", "SELECT pg_reload_conf()")?;
        }
        // The reload is asynchronous: wait until the mapping works.
        let started = Instant::now();
        let patience = Duration::from_secs(10);
        while Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                name,
                "-d",
                name,
                "-c",
                "SELECT 1",
            ])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            if started.elapsed() > patience {
                return Err(Error::RoleCannotLogIn {
                    role: name.to_owned(),
                    waited: patience,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(self.conninfo(name))
    }

    /// A program of this cluster's PostgreSQL (`psql`, `pg_dump`).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The connection string of `database` as its owner role.
    pub fn conninfo(&self, database: &str) -> String {
        format!(
            "host={} port={} dbname={database} user={database}",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Stop the server at once (like a crash), keeping the data directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // Children of the postmaster exit when it is gone.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Postgres {
    /// Stop the server cleanly (SIGINT: fast shutdown), killing it after 15 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown (clients are disconnected, data is safe).
            let _ = os::signal(&child, Signal::Int);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How to install tansu, for error messages.
pub const TANSU_HINT: &str = "install it: cargo install tansu --version 0.6.0 --locked --features dynostore (scripts/setup.sh)";

/// The tansu executable: `$TEIPSUM_TANSU`, else `~/.cargo/bin/tansu` (where
/// scripts/setup.sh installs it), else `tansu` on `PATH`.
pub fn tansu_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TEIPSUM_TANSU").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/tansu");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    which("tansu").unwrap_or_else(|| PathBuf::from("tansu"))
}

/// A running tansu broker with in-memory storage.
#[derive(Debug)]
pub struct Tansu {
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
    /// Port.
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl Tansu {
    /// Start a broker on a free port and wait until it answers.
    pub fn start() -> Result<Tansu> {
        Self::start_on(free_port()?)
    }

    /// Start a broker on `port`.
    pub fn start_on(port: u16) -> Result<Tansu> {
        let dir = TempDir::new("teipsum-tansu")?;
        let log = dir.path().join("tansu.log");
        let err = dir.path().join("tansu.err");
        let url = format!("tcp://127.0.0.1:{port}");
        let program = tansu_bin();
        let child = Command::new(&program)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args([
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                "teipsum-test",
            ])
            .stdout(std::fs::File::create(&log).map_err(io("creating", &log))?)
            .stderr(std::fs::File::create(&err).map_err(io("creating", &err))?)
            .spawn()
            .map_err(|source| Error::Spawn {
                program,
                hint: Some(TANSU_HINT),
                source,
            })?;
        let mut broker = Tansu {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            child: Some(child),
            log,
            _dir: dir,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let patience = Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.bootstrap).is_err() {
            if started.elapsed() > patience {
                self.kill();
                return Err(Error::TansuNotListening {
                    bootstrap: self.bootstrap.clone(),
                    waited: patience,
                    log: std::fs::read_to_string(&self.log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Create `topics` (name, partitions), waiting for the broker's answer.
    pub fn create_topics(&self, topics: &[(&str, i32)]) -> Result<()> {
        let kafka = |source| Error::Kafka {
            bootstrap: self.bootstrap.clone(),
            source: Box::new(source),
        };
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .map_err(kafka)?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        // A thread of its own: the caller may itself be inside a runtime.
        let results = on_own_runtime("created topics", || {
            admin.create_topics(new.iter(), &AdminOptions::new())
        })?
        .map_err(kafka)?;
        for result in results {
            match result {
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) | Ok(_) => {}
                Err((topic, code)) => return Err(Error::TopicNotCreated { topic, code }),
            }
        }
        Ok(())
    }

    /// Stop the broker (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run `future` to completion on a current-thread runtime in a thread of
/// its own: the caller may itself be inside a runtime, where `block_on` panics.
pub fn on_own_runtime<F, Fut>(what: &'static str, future: F) -> Result<Fut::Output>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future,
    Fut::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future()))
            })
            .join()
            .map_err(|_| Error::ThreadPanicked { what })?
            .map_err(|source| Error::Runtime { what, source })
    })
}

/// The path of a workspace binary built next to the running test
/// (`<target>/debug/<name>`).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(Error::CurrentExe)?;
    let dir = exe
        .parent()
        .map(|deps| {
            if deps.ends_with("deps") {
                deps.parent().unwrap_or(deps)
            } else {
                deps
            }
        })
        .unwrap_or(Path::new("."));
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::NotBuilt { path })
    }
}

/// A directory of credential files, as systemd's `LoadCredential=` makes one.
#[derive(Debug)]
pub struct Credentials(TempDir);

impl Credentials {
    /// Files `name` → contents.
    pub fn new(files: &[(&str, &str)]) -> Result<Credentials> {
        let dir = TempDir::new("teipsum-credentials")?;
        for (name, contents) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).map_err(io("writing", &path))?;
        }
        Ok(Credentials(dir))
    }

    /// The directory (`TEIPSUM_CREDENTIALS_DIR`).
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A service binary running as a child process.
#[derive(Debug)]
pub struct ServiceProcess {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Port it listens on.
    pub port: u16,
    name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log_prefix: Option<String>,
    child: Option<Child>,
    stops: u64,
    /// The last [`RECENT_LINES`] lines it printed, when printed behind a prefix.
    recent: Arc<Mutex<VecDeque<String>>>,
}

/// How long [`ServiceProcess::stop`] waits after SIGTERM (a service drains
/// requests for up to 25 s) before it kills the process.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// How many of a service's latest log lines [`ServiceProcess::recent_logs`] keeps.
pub const RECENT_LINES: usize = 5000;

/// The raw HTTP status of `GET path` on 127.0.0.1:`port`, if it answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

impl ServiceProcess {
    /// Start binary `name` (built next to the test) with exactly `env`
    /// (plus PATH), on the port its `TEIPSUM_LISTEN` names, and wait until
    /// `/readyz` answers 200.
    pub fn spawn(name: &str, env: Vec<(String, String)>) -> Result<ServiceProcess> {
        let mut process = Self::new(name, binary(name)?, env, None)?;
        process.start()?;
        Ok(process)
    }

    /// A process of `binary`, not started yet. With a log prefix, its output
    /// is printed line by line behind the prefix; with an empty prefix it is
    /// discarded; without, it goes to stderr.
    pub fn new(
        name: &str,
        binary: PathBuf,
        env: Vec<(String, String)>,
        log_prefix: Option<String>,
    ) -> Result<ServiceProcess> {
        let listen = env
            .iter()
            .find(|(k, _)| k == "TEIPSUM_LISTEN")
            .map(|(_, v)| v.clone());
        let port: u16 = listen
            .as_deref()
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .ok_or_else(|| Error::NoListenPort {
                service: name.to_owned(),
                listen: listen.clone(),
            })?;
        Ok(ServiceProcess {
            base: format!("http://127.0.0.1:{port}"),
            port,
            name: name.to_owned(),
            binary,
            env,
            log_prefix,
            child: None,
            stops: 0,
            recent: Arc::default(),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its latest log lines (stdout and stderr, up to [`RECENT_LINES`]),
    /// kept when its output is printed behind a prefix; empty otherwise.
    pub fn recent_logs(&self) -> Vec<String> {
        self.recent
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// Start (again) and wait until ready.
    pub fn start(&mut self) -> Result<()> {
        self.launch()?;
        self.wait_ready(Duration::from_secs(60))
    }

    /// Start the process without waiting.
    pub fn launch(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Err(Error::AlreadyRunning {
                service: self.name.clone(),
            });
        }
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let piped = self.log_prefix.as_deref().is_some_and(|p| !p.is_empty());
        let discard = self.log_prefix.as_deref() == Some("");
        command
            .stdout(if piped { Stdio::piped() } else { Stdio::null() })
            .stderr(if piped {
                Stdio::piped()
            } else if discard {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            program: self.binary.clone(),
            hint: None,
            source,
        })?;
        if let Some(prefix) = self.log_prefix.as_ref().filter(|p| !p.is_empty()) {
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let prefix = prefix.clone();
                let recent = Arc::clone(&self.recent);
                std::thread::spawn(move || {
                    use std::io::BufRead;
                    for line in std::io::BufReader::new(stream)
                        .lines()
                        .map_while(Result::ok)
                    {
                        eprintln!("{prefix} {line}");
                        let mut recent = recent.lock().expect("not poisoned");
                        if recent.len() == RECENT_LINES {
                            recent.pop_front();
                        }
                        recent.push_back(line);
                    }
                });
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// Wait until `/readyz` answers 200, or say why not.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while http_status(self.port, "/readyz") != Some(200) {
            if let Some(status) = self.exited() {
                return Err(Error::ExitedDuringStart {
                    service: self.name.clone(),
                    status,
                });
            }
            if started.elapsed() > timeout {
                return Err(Error::NotReady {
                    service: self.name.clone(),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// How the process ended, if it was started and has exited since
    /// (it is then reaped, and counts as not started). A process stopped
    /// with [`stop`](Self::stop) or [`kill`](Self::kill) never reports here:
    /// that is how a supervisor tells a crash from an intentional stop.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` to the running process without reaping it: to whoever
    /// watches [`exited`](Self::exited) (a supervisor), a [`Signal::Kill`]
    /// is then a crash. Nothing happens when it is not running.
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        match &self.child {
            Some(child) => os::signal(child, signal),
            None => Ok(()),
        }
    }

    /// SIGKILL, as a crash would (but counted as a stop: see [`stops`](Self::stops)).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.stops += 1;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    /// A process still running [`STOP_TIMEOUT`] after SIGTERM is killed,
    /// as systemd does past `TimeoutStopSec=`, and the stop counts as failed.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            None => true,
            Some(mut child) => {
                self.stops += 1;
                let _ = os::signal(&child, Signal::Term);
                let deadline = Instant::now() + STOP_TIMEOUT;
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => return status.success(),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => {
                            eprintln!(
                                "{}: still running {STOP_TIMEOUT:?} after SIGTERM; killed",
                                self.name
                            );
                            let _ = child.kill();
                            let _ = child.wait();
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// How many times [`stop`](Self::stop) or [`kill`](Self::kill) ended the
    /// process: a supervisor that sees it change cancels a pending restart,
    /// as `systemctl stop` cancels systemd's.
    pub fn stops(&self) -> u64 {
        self.stops
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client for tests. Installs the ring crypto provider first: in a
/// workspace build reqwest may be compiled with rustls (the end-to-end tests
/// need it), and then it needs a process-wide provider even for plain HTTP.
pub fn http_client() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(Error::HttpClient)
}
