//! `teipsum restore`: put one database back from a dump of the nightly
//! backup (nixpkgs' `services.postgresqlBackup`).
//!
//! The backup unit of database `D` runs, as `postgres`,
//! `pg_dump -C D | <compressor> > <location>/D.sql<suffix>` (suffix `.gz`
//! for gzip, `.zstd` for zstd, none for `none`; the previous dump is kept as
//! `D.prev.sql<suffix>`). With `-C` the dump starts with `CREATE DATABASE D`,
//! `ALTER DATABASE D OWNER TO ...` and `\connect D`; the rest is the
//! database's contents.
//!
//! A restore checks the whole file first (it decodes, it is a complete dump
//! of `D`, its header holds nothing but the database's creation), then
//! loads the contents into a staging database `D_restoring` in one
//! transaction with `ON_ERROR_STOP` (while the services still run against
//! the old `D`: a failure leaves everything as it was), then stops the
//! services of `D`, drops `D`, renames the staging database to `D` and
//! starts the services again. Only the stop and start differ between a host
//! ([`Systemd`]) and the dev stack of the tests ([`Units`]).

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use teipsum_spec::{
    Plan,
    plan::{DatabasePlan, ServicePlan},
};

/// The last comment of every complete `pg_dump` plain-format dump.
const DUMP_COMPLETE: &[u8] = b"-- PostgreSQL database dump complete";

/// Why a restore refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The plan has no such database.
    #[error("`{database}` is not a database of the plan; its databases are: {}", known.join(", "))]
    UnknownDatabase {
        /// Asked for.
        database: String,
        /// The plan's databases.
        known: Vec<String>,
    },
    /// The dump cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The dump.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither gzip, zstd nor a plain SQL dump.
    #[error(
        "cannot tell how {} is compressed: it starts neither like gzip, like zstd nor like a plain pg_dump file",
        path.display()
    )]
    UnknownCompression {
        /// The dump.
        path: PathBuf,
    },
    /// The decompressor rejected the file.
    #[error("{} does not decode as {compression}: {message}", path.display())]
    Decode {
        /// The dump.
        path: PathBuf,
        /// What it looked like.
        compression: Compression,
        /// The decompressor's complaint.
        message: String,
    },
    /// Decoded, but not a `pg_dump -C` dump of the database.
    #[error("{} is not a dump of `{database}`: {why}", path.display())]
    NotADumpOf {
        /// The dump.
        path: PathBuf,
        /// The database it should restore.
        database: String,
        /// What is wrong with it.
        why: String,
    },
    /// A program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// psql failed; `unchanged` says whether the database is as it was.
    #[error("{what} failed{}: {message}", if *unchanged { " (the database is unchanged)" } else { "" })]
    Psql {
        /// What it was doing.
        what: String,
        /// psql's error output.
        message: String,
        /// Nothing was changed.
        unchanged: bool,
    },
    /// The services could not be stopped or started.
    #[error("{0}")]
    Units(String),
}

/// How a dump is compressed (`services.postgresqlBackup.compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain SQL (`none`).
    None,
    /// `gzip -c`.
    Gzip,
    /// `zstd -c`.
    Zstd,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "plain SQL",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl Compression {
    /// Told from the first bytes (magic numbers), not from the file name: a
    /// renamed or copied dump is still recognised.
    fn of(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(b"--") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The decompressor, as the backup unit's compressor's counterpart.
    fn program(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// A dump that was read to its end and found to be a complete dump of its
/// database.
#[derive(Debug, Clone)]
pub struct Dump {
    /// The file.
    pub path: PathBuf,
    /// How it is compressed.
    pub compression: Compression,
    /// The database it creates.
    pub database: String,
    /// The options of its `CREATE DATABASE` (`TEMPLATE = template0 ENCODING = ...`).
    create_options: String,
    /// Size of the SQL, decoded.
    pub sql_bytes: u64,
}

/// The decoded SQL of a dump, line by line.
struct Decoded {
    lines: Box<dyn BufRead>,
    decoder: Option<(Child, std::thread::JoinHandle<String>)>,
    path: PathBuf,
    compression: Compression,
}

impl Decoded {
    fn open(path: &Path) -> Result<Decoded, RestoreError> {
        let unreadable = |source| RestoreError::Unreadable {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(unreadable)?;
        let mut head = [0u8; 4];
        let n = read_up_to(&mut file, &mut head).map_err(unreadable)?;
        let compression =
            Compression::of(&head[..n]).ok_or_else(|| RestoreError::UnknownCompression {
                path: path.to_owned(),
            })?;
        let Some(program) = compression.program() else {
            let file = File::open(path).map_err(unreadable)?;
            return Ok(Decoded {
                lines: Box::new(BufReader::new(file)),
                decoder: None,
                path: path.to_owned(),
                compression,
            });
        };
        let mut child = Command::new(program)
            .args(["-d", "-c", "--"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RestoreError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = drain(child.stderr.take().expect("stderr is piped"));
        Ok(Decoded {
            lines: Box::new(BufReader::new(stdout)),
            decoder: Some((child, stderr)),
            path: path.to_owned(),
            compression,
        })
    }

    /// The next line with its newline, or `None` at the end.
    fn line(&mut self, buf: &mut Vec<u8>) -> Result<bool, RestoreError> {
        buf.clear();
        let n = self
            .lines
            .read_until(b'\n', buf)
            .map_err(|source| RestoreError::Unreadable {
                path: self.path.clone(),
                source,
            })?;
        Ok(n > 0)
    }

    /// Wait for the decompressor: did the whole file decode?
    fn finish(self) -> Result<(), RestoreError> {
        drop(self.lines);
        let Some((mut child, stderr)) = self.decoder else {
            return Ok(());
        };
        let status = child.wait().map_err(|source| RestoreError::Unreadable {
            path: self.path.clone(),
            source,
        })?;
        let message = stderr.join().unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(RestoreError::Decode {
                path: self.path,
                compression: self.compression,
                message: format!("{status}: {}", message.trim()),
            })
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            read => n += read,
        }
    }
    Ok(n)
}

/// Read a pipe to its end on a thread (so the child never blocks on it).
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// How `pg_dump` writes an identifier: bare when it is a plain lower-case
/// name, quoted otherwise.
fn dump_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { quote(name) }
}

/// A quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a header line (before `\connect`) is.
enum Header {
    /// Comments, blank lines, `SET`s, `\restrict`: nothing to carry over.
    Ignored,
    /// `CREATE DATABASE <name> WITH <options>;`
    Create { name: String, options: String },
    /// `ALTER DATABASE <name> OWNER TO <role>;`: the plan's role owns it.
    Owner,
    /// `\connect <name>`: the contents follow.
    Connect(String),
    /// Anything else (database settings, grants): not carried over, so refused.
    Other(String),
}

fn header(line: &str) -> Header {
    let line = line.trim_end();
    if line.is_empty()
        || line.starts_with("--")
        || line.starts_with("SET ")
        || line.starts_with("SELECT pg_catalog.set_config(")
        || line.starts_with("\\restrict ")
        || line.starts_with("\\unrestrict ")
    {
        return Header::Ignored;
    }
    if let Some(rest) = line.strip_prefix("\\connect ") {
        return Header::Connect(rest.trim().to_owned());
    }
    if let Some(rest) = line.strip_prefix("CREATE DATABASE ")
        && let Some((name, options)) = rest.split_once(" WITH ")
    {
        return Header::Create {
            name: name.to_owned(),
            options: options.trim_end_matches(';').to_owned(),
        };
    }
    if line.starts_with("ALTER DATABASE ") && line.contains(" OWNER TO ") {
        return Header::Owner;
    }
    Header::Other(line.to_owned())
}

/// Read the whole dump: it decodes, its header creates `database` and
/// nothing else, and it ends as a complete dump ends. Changes nothing.
pub fn read_dump(path: &Path, database: &str) -> Result<Dump, RestoreError> {
    let not_a_dump = |why: String| RestoreError::NotADumpOf {
        path: path.to_owned(),
        database: database.to_owned(),
        why,
    };
    let mut decoded = Decoded::open(path)?;
    let compression = decoded.compression;
    let mut line = Vec::new();
    let mut created = None;
    let mut connected = false;
    let mut sql_bytes = 0u64;
    let mut complete = false;
    let result = (|| {
        while decoded.line(&mut line)? {
            sql_bytes += line.len() as u64;
            if connected {
                complete |= line.starts_with(DUMP_COMPLETE);
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            match header(&text) {
                Header::Ignored | Header::Owner => {}
                Header::Create { name, options } => created = Some((name, options)),
                Header::Connect(name) => {
                    let Some((created, _)) = &created else {
                        return Err(not_a_dump(format!(
                            "it connects to {name} before creating a database (was it made with pg_dump -C, as the backup unit does?)"
                        )));
                    };
                    if name != *created {
                        return Err(not_a_dump(format!(
                            "it creates {created} but connects to {name}"
                        )));
                    }
                    connected = true;
                }
                Header::Other(statement) => {
                    return Err(not_a_dump(format!(
                        "its header has a statement restore does not carry over: {statement}"
                    )));
                }
            }
        }
        Ok(())
    })();
    if result.is_err() {
        // Read on, so that the decompressor ends by itself: its failure, if
        // any, explains a garbled stream best.
        while decoded.line(&mut line).unwrap_or(false) {}
    }
    let finished = decoded.finish();
    finished?;
    result?;
    let Some((name, create_options)) = created else {
        return Err(not_a_dump(
            "it creates no database (pg_dump -C writes CREATE DATABASE first)".to_owned(),
        ));
    };
    if name != dump_ident(database) {
        return Err(not_a_dump(format!("it is a dump of {name}")));
    }
    if !connected {
        return Err(not_a_dump("it never connects to the database".to_owned()));
    }
    if !complete {
        return Err(not_a_dump(
            "it is cut short: the closing \"PostgreSQL database dump complete\" is missing"
                .to_owned(),
        ));
    }
    Ok(Dump {
        path: path.to_owned(),
        compression,
        database: database.to_owned(),
        create_options,
        sql_bytes,
    })
}

/// How to reach the server as its superuser: psql over the Unix socket.
#[derive(Debug, Clone)]
pub struct Superuser {
    /// The psql program.
    pub psql: PathBuf,
    /// Directory of the server's socket.
    pub socket_dir: PathBuf,
    /// Port (names the socket).
    pub port: u16,
    /// Database role (`postgres`).
    pub role: String,
    /// The system user to run psql as (`postgres`, for peer
    /// authentication on a host, through `runuser`), or the current one.
    pub run_as: Option<String>,
}

impl Superuser {
    /// The superuser of a host's server, as the plan has it: psql from
    /// `PATH`, run as `postgres`.
    pub fn of_host(plan: &Plan) -> Superuser {
        Superuser {
            psql: PathBuf::from("psql"),
            socket_dir: PathBuf::from(&plan.postgres.socket_dir),
            port: plan.postgres.port,
            role: "postgres".to_owned(),
            run_as: Some("postgres".to_owned()),
        }
    }

    fn command(&self, database: &str) -> Command {
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&self.psql);
                c
            }
            None => Command::new(&self.psql),
        };
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                &self.role,
                "-d",
                database,
            ]);
        command
    }

    /// Run one statement in `database`; `unchanged` says what a failure means.
    pub(crate) fn run(
        &self,
        database: &str,
        sql: &str,
        unchanged: bool,
    ) -> Result<String, RestoreError> {
        let out = self
            .command(database)
            .args(["-A", "-t", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RestoreError::Spawn {
                program: self.psql.display().to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(RestoreError::Psql {
                what: sql.to_owned(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                unchanged,
            })
        }
    }

    /// Load the contents of `dump` (everything after its `\connect`) into
    /// `database`, in one transaction that stops at the first error.
    fn load(&self, dump: &Dump, database: &str) -> Result<(), RestoreError> {
        let mut psql = self
            .command(database)
            .arg("--single-transaction")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            // Result rows (setval, set_config) are not wanted.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RestoreError::Spawn {
                program: self.psql.display().to_string(),
                source,
            })?;
        let errors = drain(psql.stderr.take().expect("stderr is piped"));
        let mut stdin = psql.stdin.take().expect("stdin is piped");
        let mut decoded = Decoded::open(&dump.path)?;
        let mut line = Vec::new();
        let mut contents = false;
        // A write fails only when psql stopped at an error: its status says which.
        let mut written = Ok(());
        while written.is_ok() && decoded.line(&mut line)? {
            if contents {
                written = stdin.write_all(&line);
            } else {
                contents = matches!(header(&String::from_utf8_lossy(&line)), Header::Connect(_));
            }
        }
        drop(stdin);
        let status = psql.wait().map_err(|source| RestoreError::Spawn {
            program: self.psql.display().to_string(),
            source,
        })?;
        let message = errors.join().unwrap_or_default();
        if !status.success() {
            let _ = decoded.finish();
            return Err(RestoreError::Psql {
                what: format!("loading {} into {database}", dump.path.display()),
                message: message.trim().to_owned(),
                unchanged: true,
            });
        }
        decoded.finish()
    }
}

/// Stopping and starting the services of a database: systemd on a host,
/// the dev stack's processes in the tests.
pub trait Units {
    /// Stop them, waiting until they have exited.
    fn stop(&mut self, services: &[&ServicePlan]) -> Result<(), String>;
    /// Start them, waiting until they are active (ready).
    fn start(&mut self, services: &[&ServicePlan]) -> Result<(), String>;
}

/// A host's units, through `systemctl`.
#[derive(Debug, Default)]
pub struct Systemd;

fn systemctl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "systemctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Units for Systemd {
    fn stop(&mut self, services: &[&ServicePlan]) -> Result<(), String> {
        if services.is_empty() {
            return Ok(());
        }
        let mut args = vec!["stop"];
        args.extend(services.iter().map(|s| s.unit.as_str()));
        systemctl(&args)
    }

    fn start(&mut self, services: &[&ServicePlan]) -> Result<(), String> {
        if services.is_empty() {
            return Ok(());
        }
        let mut args = vec!["start"];
        args.extend(services.iter().map(|s| s.unit.as_str()));
        systemctl(&args)?;
        // `start` returns once a notify unit said READY=1 (or failed); a
        // unit that dies right after is caught here.
        let deadline = Instant::now() + Duration::from_secs(120);
        for service in services {
            while systemctl(&["is-active", "--quiet", &service.unit]).is_err() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} is not active; see journalctl -u {}",
                        service.unit, service.unit
                    ));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }
}

/// The plan's database called `name`.
pub fn database<'a>(plan: &'a Plan, name: &str) -> Result<&'a DatabasePlan, RestoreError> {
    plan.postgres
        .databases
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| RestoreError::UnknownDatabase {
            database: name.to_owned(),
            known: plan
                .postgres
                .databases
                .iter()
                .map(|d| d.name.clone())
                .collect(),
        })
}

/// Replace the database of `dump` with the dump's contents, owned by the
/// plan's role: load a staging copy in one transaction, then (with the
/// services of the database stopped) drop the old database and rename the
/// copy. Progress goes to `say`.
pub fn restore(
    plan: &Plan,
    dump: &Dump,
    server: &Superuser,
    units: &mut dyn Units,
    say: &mut dyn FnMut(String),
) -> Result<(), RestoreError> {
    let target = database(plan, &dump.database)?;
    let services: Vec<&ServicePlan> = plan
        .services
        .iter()
        .filter(|s| s.database == target.name)
        .collect();
    let staging = format!("{}_restoring", target.name);
    server.run(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&staging)),
        true,
    )?;
    server.run(
        "postgres",
        &format!(
            "CREATE DATABASE {} WITH {} OWNER = {}",
            quote(&staging),
            dump.create_options,
            quote(&target.role)
        ),
        true,
    )?;
    if let Err(e) = server.load(dump, &staging) {
        let _ = server.run(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {}", quote(&staging)),
            true,
        );
        return Err(e);
    }
    say(format!(
        "loaded {} ({}, {} bytes of SQL) into {staging}, in one transaction",
        dump.path.display(),
        dump.compression,
        dump.sql_bytes
    ));
    let names: Vec<&str> = services.iter().map(|s| s.unit.as_str()).collect();
    units.stop(&services).map_err(|e| {
        RestoreError::Units(format!(
            "{e}; {} is unchanged, {staging} holds the dump",
            target.name
        ))
    })?;
    say(format!("stopped {}", names.join(", ")));
    let swapped = server
        .run(
            "postgres",
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote(&target.name)
            ),
            true,
        )
        .and_then(|_| {
            server.run(
                "postgres",
                &format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote(&staging),
                    quote(&target.name)
                ),
                false,
            )
        });
    if swapped.is_ok() {
        say(format!(
            "replaced {} (owner {}) with the dump's contents",
            target.name, target.role
        ));
    }
    // Started again whatever happened: a failed swap keeps the old database
    // or needs the operator (the error says which).
    let started = units.start(&services);
    swapped?;
    started.map_err(|e| RestoreError::Units(format!("{} was restored, but: {e}", target.name)))?;
    say(format!("started {}: active", names.join(", ")));
    Ok(())
}

/// `teipsum restore` on a host: read `from`, then [`restore`] with systemd.
pub fn run(plan: &Plan, database_name: &str, from: &Path) -> Result<(), RestoreError> {
    database(plan, database_name)?;
    let dump = read_dump(from, database_name)?;
    println!(
        "{}: a complete {} dump of {}",
        from.display(),
        dump.compression,
        dump.database
    );
    restore(
        plan,
        &dump,
        &Superuser::of_host(plan),
        &mut Systemd,
        &mut |line| println!("{line}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_told_by_the_magic_number() {
        assert_eq!(
            Compression::of(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of(b"--\n-"), Some(Compression::None));
        assert_eq!(Compression::of(b"PK\x03\x04"), None);
        assert_eq!(Compression::of(b""), None);
    }

    #[test]
    fn names_are_compared_as_pg_dump_writes_them() {
        assert_eq!(dump_ident("teipsum_order"), "teipsum_order");
        assert_eq!(dump_ident("Shop"), "\"Shop\"");
        assert_eq!(dump_ident("1st"), "\"1st\"");
    }

    #[test]
    fn a_header_carries_the_creation_and_nothing_else() {
        assert!(matches!(
            header("CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8';\n"),
            Header::Create { name, options } if name == "shop" && options == "TEMPLATE = template0 ENCODING = 'UTF8'"
        ));
        assert!(matches!(header("\\connect shop\n"), Header::Connect(n) if n == "shop"));
        assert!(matches!(
            header("ALTER DATABASE shop OWNER TO shop;"),
            Header::Owner
        ));
        assert!(matches!(header("SET lock_timeout = 0;"), Header::Ignored));
        assert!(matches!(
            header("ALTER DATABASE shop SET work_mem TO '1GB';"),
            Header::Other(_)
        ));
    }
}
