//! Throw-away infrastructure for tests: a PostgreSQL cluster from `initdb`
//! and a tansu broker, each on its own socket or port, removed on drop.
//!
//! The cluster is set up as on a NixOS host: clients connect over the Unix
//! socket with peer authentication, each database owned by a role of the
//! same name; the test's OS user is mapped to those roles (`pg_ident.conf`),
//! since tests do not run as one system user per service.

mod plan_env;

pub use plan_env::{
    PlanEnvError, TEST_ENVIRONMENT, TestInstance, committed_plan, config_file, plan_service_env,
    plan_setting, plan_topics, service_env,
};

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    // SAFETY-free: `id -u` keeps this crate free of libc.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("`id -un` works")
}

/// The directory of PostgreSQL's server binaries.
pub fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TEIPSUM_PG_BIN") {
        return PathBuf::from(dir);
    }
    for version in ["15", "16", "17"] {
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL server binaries not found (initdb, postgres); install postgresql-15 (scripts/setup.sh) or set TEIPSUM_PG_BIN"
    );
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root), as ourselves otherwise. `setpriv` changes user and then
/// execs the program, so the child we hold is PostgreSQL itself and our
/// signals (SIGINT for a fast shutdown) reach it; `runuser` would stay in
/// between and let the postmaster outlive the test.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {}", path.display());
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system temp dir.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
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
}

impl Postgres {
    /// Create and start a throw-away cluster (about a second).
    pub fn start() -> Postgres {
        let temp = TempDir::new("teipsum-pg");
        let root = temp.path().to_owned();
        let mut pg = Self::start_in(&root);
        pg._temp = Some(temp);
        pg
    }

    /// Start the cluster kept in `root` (created on first use; its data
    /// survives the process, for `teipsum dev --state-dir`).
    pub fn start_in(root: &Path) -> Postgres {
        let bin = postgres_bin_dir();
        let data = root.join("data");
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir).unwrap();
        let user = current_user();
        if !data.join("PG_VERSION").exists() {
            chown_postgres(root);
            let init = as_postgres(&bin.join("initdb"))
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
                .expect("initdb runs");
            assert!(
                init.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            // Peer authentication with a map: the OS user running the tests
            // (or `teipsum dev`) may act as the superuser and as every
            // service role created later.
            std::fs::write(data.join("pg_hba.conf"), "local all all peer map=teipsum\n").unwrap();
            std::fs::write(
                data.join("pg_ident.conf"),
                format!("teipsum {user} postgres\nteipsum postgres postgres\n"),
            )
            .unwrap();
        }
        chown_postgres(root);
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let port = 5432;
        let child = as_postgres(&bin.join("postgres"))
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
            .expect("postgres starts");
        let pg = Postgres {
            _temp: None,
            root: root.to_owned(),
            socket_dir,
            port,
            child: Some(child),
            user,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.psql("postgres", "SELECT 1").is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run SQL as the superuser in `database`, returning psql's output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(postgres_bin_dir().join("psql"))
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
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Create a database owned by a role of the same name, reachable by the
    /// test's OS user through peer authentication; returns its connection string.
    pub fn create_database(&self, name: &str) -> String {
        let exists = |sql: String| {
            self.psql("postgres", &sql)
                .map(|o| o == "1")
                .unwrap_or(false)
        };
        if !exists(format!("SELECT 1 FROM pg_roles WHERE rolname = '{name}'")) {
            self.psql("postgres", &format!("CREATE ROLE \"{name}\" LOGIN"))
                .expect("create role");
        }
        if !exists(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        )) {
            self.psql(
                "postgres",
                &format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""),
            )
            .expect("create database");
        }
        let ident = self.root.join("data/pg_ident.conf");
        let mut text = std::fs::read_to_string(&ident).unwrap();
        let line = format!("teipsum {} {name}\n", self.user);
        if !text.contains(&line) {
            text.push_str(&line);
            std::fs::write(&ident, text).unwrap();
            self.psql("postgres", "SELECT pg_reload_conf()")
                .expect("reload");
        }
        // The reload is asynchronous: wait until the mapping works.
        let started = Instant::now();
        while Command::new(postgres_bin_dir().join("psql"))
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
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "role {name} cannot log in"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.conninfo(name)
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
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
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
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
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

/// The tansu executable.
pub fn tansu_bin() -> PathBuf {
    if let Ok(path) = std::env::var("TEIPSUM_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/tansu");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("tansu")
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
    pub fn start() -> Tansu {
        Self::start_on(free_port())
    }

    /// Start a broker on `port`.
    pub fn start_on(port: u16) -> Tansu {
        let dir = TempDir::new("teipsum-tansu");
        let log = dir.path().join("tansu.log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--cluster-id", "teipsum-test"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("tansu.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("tansu does not start ({e}); install it: cargo install tansu --features dynostore (scripts/setup.sh)")
            });
        let broker = Tansu {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            child: Some(child),
            log,
            _dir: dir,
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(&self.bootstrap).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tansu did not listen on {}: {}",
                self.bootstrap,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Create `topics` (name, partitions), waiting for the broker's answer.
    pub fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("admin client");
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        // A thread of its own: the caller may itself be inside a runtime.
        let results = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(admin.create_topics(new.iter(), &AdminOptions::new()))
                })
                .join()
                .expect("the admin thread")
        })
        .expect("create_topics");
        for result in results {
            if let Err((name, code)) = result {
                assert_eq!(
                    code,
                    rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "topic {name}: {code}"
                );
            }
        }
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

/// The path of a workspace binary built next to the running test
/// (`<target>/debug/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("a target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A directory of credential files, as systemd's `LoadCredential=` makes one.
#[derive(Debug)]
pub struct Credentials(TempDir);

impl Credentials {
    /// Files `name` → contents.
    pub fn new(files: &[(&str, &str)]) -> Credentials {
        let dir = TempDir::new("teipsum-credentials");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).expect("credential file");
        }
        Credentials(dir)
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
}

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
    pub fn spawn(name: &str, env: Vec<(String, String)>) -> ServiceProcess {
        let mut process = Self::new(name, binary(name), env, None);
        process.start();
        process
    }

    /// A process of `binary`, not started yet. With a log prefix, its output
    /// is printed line by line behind the prefix; with an empty prefix it is
    /// discarded; without, it goes to stderr.
    pub fn new(
        name: &str,
        binary: PathBuf,
        env: Vec<(String, String)>,
        log_prefix: Option<String>,
    ) -> ServiceProcess {
        let listen = env
            .iter()
            .find(|(k, _)| k == "TEIPSUM_LISTEN")
            .map(|(_, v)| v.clone())
            .expect("TEIPSUM_LISTEN in the environment");
        let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
        ServiceProcess {
            base: format!("http://127.0.0.1:{port}"),
            port,
            name: name.to_owned(),
            binary,
            env,
            log_prefix,
            child: None,
        }
    }

    /// Start (again) and wait until ready.
    pub fn start(&mut self) {
        self.launch();
        self.wait_ready(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Start the process without waiting.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
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
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "{} ({}) does not start: {e}",
                self.name,
                self.binary.display()
            )
        });
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
                std::thread::spawn(move || {
                    use std::io::BufRead;
                    for line in std::io::BufReader::new(stream)
                        .lines()
                        .map_while(Result::ok)
                    {
                        eprintln!("{prefix} {line}");
                    }
                });
            }
        }
        self.child = Some(child);
    }

    /// Wait until `/readyz` answers 200, or say why not.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        while http_status(self.port, "/readyz") != Some(200) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("{} exited during start: {status}", self.name));
            }
            if started.elapsed() > timeout {
                return Err(format!("{} did not become ready in {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            None => true,
            Some(mut child) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                child.wait().map(|s| s.success()).unwrap_or(false)
            }
        }
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
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}
