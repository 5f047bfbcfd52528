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
//! | 3 | an operation failed (I/O, broker, a refused overwrite) |
//! | 4 | `compile --check` / `diff --exit-code`: the output would change |

pub mod commands;
pub mod graph;
pub mod report;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the spec is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: an operation failed.
pub const EXIT_FAILED: u8 = 3;
/// Exit code: generated output is stale or would change.
pub const EXIT_CHANGED: u8 = 4;

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the spec is invalid (nothing written); 2 usage error;
3 an operation failed (I/O, broker, refused overwrite); 4 `compile --check` or
`diff --exit-code` found changes.";

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
    };
    ExitCode::from(code)
}
