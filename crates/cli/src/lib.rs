//! The `teipsum` command line: one module per subcommand, all reading the
//! same checked [`teipsum_spec::Spec`].
//!
//! Exit codes (documented in `teipsum --help` and the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the spec is invalid (nothing was written) |
//! | 2 | wrong command-line usage |
//! | 3 | an operation failed (I/O, broker, a refused overwrite, a refused or failed restore) |
//! | 4 | `compile --check` / `diff --exit-code`: the output would change |
//! | 5 | `status`: something is wrong (listed under PROBLEMS) |

pub mod commands;
pub mod compile;
mod external;
pub mod graph;
pub mod report;
pub mod restore;
pub mod status;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand, ValueEnum};

/// Where a host keeps its plan (the generated `environment.etc`).
pub const HOST_PLAN: &str = "/etc/teipsum/plan.json";

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the spec is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: an operation failed.
pub const EXIT_FAILED: u8 = 3;
/// Exit code: generated output is stale or would change.
pub const EXIT_CHANGED: u8 = 4;
/// Exit code: `status` found something wrong.
pub const EXIT_PROBLEMS: u8 = 5;

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the spec is invalid (nothing written); 2 usage error;
3 an operation failed (I/O, broker, refused overwrite, refused or failed
restore); 4 `compile --check` or `diff --exit-code` found changes; 5 `status`
found a problem.";

/// Check the TeIpsum platform spec and compile it into NixOS modules.
#[derive(Debug, Parser)]
#[command(name = "teipsum", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The platform spec.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.ncl",
        env = "TEIPSUM_SPEC"
    )]
    pub file: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the spec: contracts, cross-references, ports, routes, secrets.
    Check {
        /// Print diagnostics as JSON (one object per problem) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the resolved plan of one environment as JSON.
    Plan {
        /// Environment.
        #[arg(long, short, default_value = "prod")]
        env: String,
    },
    /// Draw services, topics, databases and routes.
    Graph {
        /// Environment.
        #[arg(long, short, default_value = "prod")]
        env: String,
        /// Output language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Everything about one service: port, routes, database, topics, secrets, unit.
    Explain {
        /// Service name.
        service: String,
        /// Environment.
        #[arg(long, short, default_value = "prod")]
        env: String,
    },
    /// Write the NixOS modules of the environments to `nix/generated/<env>/`.
    Compile {
        /// Environment, or `all`.
        #[arg(long, short, default_value = "all")]
        env: String,
        /// Only compare with the files on disk; exit 4 when they are stale.
        #[arg(long)]
        check: bool,
        /// Output directory.
        #[arg(long, default_value = "nix/generated")]
        out: PathBuf,
    },
    /// Say what a spec change would do to the deployed host.
    Diff {
        /// Environment.
        #[arg(long, short, default_value = "prod")]
        env: String,
        /// Compare with another spec instead of the last compiled plan.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Directory of the compiled plans.
        #[arg(long, default_value = "nix/generated")]
        out: PathBuf,
        /// Exit 4 when there are changes.
        #[arg(long)]
        exit_code: bool,
    },
    /// Run the whole platform of an environment on this machine: PostgreSQL,
    /// tansu, every service and nginx (HTTPS with a development certificate).
    /// Runs the `teipsum-dev` program (crates/dev) with these arguments;
    /// `teipsum dev --help` lists them.
    #[command(disable_help_flag = true)]
    Dev {
        /// Arguments of `teipsum-dev` (`--env stage --state-dir .dev ...`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Kafka topics.
    Topics {
        /// What to do.
        #[command(subcommand)]
        what: TopicsWhat,
    },
    /// Generate keys.
    Keygen {
        /// Which key.
        #[command(subcommand)]
        what: KeygenWhat,
    },
    /// Replace one database with a dump of the nightly backup (run as root
    /// on the host): checks the whole dump first, loads it into a staging
    /// database in one transaction, then stops the database's services,
    /// swaps the databases and starts the services again.
    Restore {
        /// Environment; must be the plan's.
        #[arg(long, short)]
        env: String,
        /// The database to replace (`teipsum_order`).
        #[arg(long)]
        database: String,
        /// The dump (`/var/backup/postgresql/<database>.sql.zstd`, or `.prev.sql.zstd`).
        #[arg(long)]
        from: PathBuf,
        /// A compiled plan (`/etc/teipsum/plan.json` on a host) instead of the spec.
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// The platform's health on a host, as one table: units, each
    /// service's readiness, PostgreSQL connections and sizes, outbox and
    /// parked events, consumer lag per group, the last dumps and the
    /// certificate's expiry (exit 5 when something is wrong).
    Status {
        /// Environment; must be the plan's.
        #[arg(long, short, default_value = "prod")]
        env: String,
        /// A compiled plan; default `/etc/teipsum/plan.json` when it exists
        /// (a host), else the spec.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Read a running `teipsum dev` instead of this host: its state
        /// directory (it prints it), whose `stack.json` says where
        /// everything runs.
        #[arg(long, value_name = "STATE_DIR", conflicts_with = "plan")]
        dev: Option<PathBuf>,
    },
    /// Print a generated artefact.
    Render {
        /// What to print.
        #[command(subcommand)]
        what: RenderWhat,
    },
}

/// `teipsum topics` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicsWhat {
    /// Create the declared topics and grow their partitions (never shrink).
    /// Idempotent. Topics come from `--topic` (as the systemd unit passes
    /// them) or, without `--topic`, from the spec's `--env`.
    Apply {
        /// Bootstrap servers; default: the environment's broker.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Environment whose topics to apply (when no --topic is given).
        #[arg(long, short, default_value = "prod")]
        env: String,
        /// `name:partitions:replication:retention_ms[:delete|compact]`, repeatable.
        #[arg(long = "topic", value_name = "TOPIC")]
        topics: Vec<String>,
        /// Seconds to wait for the broker before giving up.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
}

/// `teipsum keygen` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeygenWhat {
    /// The Ed25519 key pair that signs access tokens (PKCS#8 / SPKI PEM).
    /// Refuses to overwrite an existing private key.
    Jwt {
        /// Where to write the private key (mode 0400).
        #[arg(long)]
        private: PathBuf,
        /// Where to write the public key (mode 0444).
        #[arg(long)]
        public: PathBuf,
    },
}

/// Things `teipsum render` prints.
#[derive(Debug, Subcommand)]
pub enum RenderWhat {
    /// The systemd unit file of a service (or `topics`), as NixOS installs it,
    /// e.g. for `systemd-analyze security --offline=true`.
    Unit {
        /// Service name, or `topics`.
        service: String,
        /// Environment.
        #[arg(long, short, default_value = "prod")]
        env: String,
        /// Directory of the binaries in `ExecStart=`.
        #[arg(long, default_value = "/run/current-system/sw/bin")]
        bin_dir: String,
    },
}

/// Graph languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart (renders on GitHub and in most Markdown viewers).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// Run a parsed command line and return the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Check { json } => commands::check(&cli.file, json),
        Command::Plan { env } => commands::plan(&cli.file, &env),
        Command::Graph { env, format } => commands::graph(&cli.file, &env, format),
        Command::Explain { service, env } => commands::explain(&cli.file, &service, &env),
        Command::Compile { env, check, out } => commands::compile(&cli.file, &out, &env, check),
        Command::Diff {
            env,
            from,
            out,
            exit_code,
        } => commands::diff(&cli.file, &out, &env, from.as_deref(), exit_code),
        Command::Render {
            what:
                RenderWhat::Unit {
                    service,
                    env,
                    bin_dir,
                },
        } => commands::render_unit(&cli.file, &service, &env, &bin_dir),
        Command::Topics {
            what:
                TopicsWhat::Apply {
                    bootstrap,
                    env,
                    topics,
                    wait,
                },
        } => commands::topics_apply(&cli.file, bootstrap.as_deref(), &env, &topics, wait),
        Command::Keygen {
            what: KeygenWhat::Jwt { private, public },
        } => commands::keygen_jwt(&private, &public),
        Command::Dev { args } => external::dev(&cli.file, &args),
        Command::Restore {
            env,
            database,
            from,
            plan,
        } => commands::restore(&cli.file, plan.as_deref(), &env, &database, &from),
        Command::Status {
            env,
            plan: _,
            json,
            dev: Some(state),
        } => commands::status_dev(&state, &env, json),
        Command::Status {
            env,
            plan,
            json,
            dev: None,
        } => {
            let host_plan = Path::new(HOST_PLAN);
            let plan = plan.or_else(|| host_plan.exists().then(|| host_plan.to_owned()));
            commands::status(&cli.file, plan.as_deref(), &env, json)
        }
    };
    ExitCode::from(code)
}
