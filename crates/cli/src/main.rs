//! `teipsum`: check the platform spec and compile it into NixOS modules.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = teipsum_cli::Cli::parse();
    teipsum_cli::run(cli)
}
