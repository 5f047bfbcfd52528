//! Subcommands that are programs of their own, as `git` and `cargo` run
//! `git-<name>` and `cargo-<name>`: `teipsum dev` is `teipsum-dev` (crates/dev),
//! a development tool the shipped CLI does not link.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use crate::EXIT_FAILED;

/// The program behind `teipsum dev`.
pub const DEV_PROGRAM: &str = "teipsum-dev";

/// `program` next to the running `teipsum` (cargo builds every binary of the
/// workspace into one directory), else on `PATH`.
pub fn find(program: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(program)))
        .filter(|path| path.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.is_file())
        })
    })
}

/// `teipsum [-f spec] dev ARGS`: replace this process with
/// `teipsum-dev --file spec ARGS`, so that signals (Ctrl-C, a script's
/// SIGINT) reach the stack directly. Returns only on failure.
pub fn dev(spec: &Path, args: &[OsString]) -> u8 {
    use std::os::unix::process::CommandExt;
    let Some(program) = find(DEV_PROGRAM) else {
        eprintln!(
            "error: `teipsum dev` runs {DEV_PROGRAM}, which is neither next to teipsum nor on PATH; \
             build it with `cargo build -p teipsum-cli -p teipsum-dev` (scripts/dev.sh does), \
             it is not part of the deployed package"
        );
        return EXIT_FAILED;
    };
    let error = Command::new(&program)
        .arg("--file")
        .arg(spec)
        .args(args)
        .exec();
    eprintln!("error: cannot run {}: {error}", program.display());
    EXIT_FAILED
}
