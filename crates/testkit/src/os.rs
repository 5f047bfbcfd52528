//! The few operating-system calls the testkit and `teipsum dev` make, through
//! std and rustix rather than `id`, `chown`, `chmod` and `kill` (unsafe code is
//! forbidden in the workspace, so no libc).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Child,
};

use crate::error::{Error, Result, io};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// `(uid, gid)` of the system user `name`, from `/etc/passwd`.
pub fn system_user(name: &str) -> Result<(u32, u32)> {
    passwd()
        .into_iter()
        .find(|entry| entry.name == name)
        .map(|entry| (entry.uid, entry.gid))
        .ok_or_else(|| Error::UnknownUser {
            name: name.to_owned(),
        })
}

/// The name of the user running this process: its `/etc/passwd` entry, else `$USER`.
pub fn current_user() -> Result<String> {
    let uid = rustix::process::getuid().as_raw();
    passwd()
        .into_iter()
        .find(|entry| entry.uid == uid)
        .map(|entry| entry.name)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .ok_or(Error::NoUserName { uid })
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// The local user database (`name:x:uid:gid:...`). NSS sources beyond the
/// file are not consulted: the users the tests need are system users.
fn passwd() -> Vec<PasswdEntry> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(PasswdEntry {
                name: name.to_owned(),
                uid,
                gid,
            })
        })
        .collect()
}

/// `chown -R uid:gid path` (symbolic links themselves, never what they point to).
pub fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(io("changing the owner of", path))?;
    let metadata = std::fs::symlink_metadata(path).map_err(io("reading", path))?;
    if metadata.is_dir() {
        let entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io("reading", path))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        for entry in entries {
            chown_recursive(&entry, uid, gid)?;
        }
    }
    Ok(())
}

/// `chmod mode path`.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("changing the mode of", path))
}

/// A signal [`signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop cleanly (systemd's stop).
    Term,
    /// SIGINT: PostgreSQL's fast shutdown; Ctrl-C.
    Int,
    /// SIGQUIT: nginx's graceful shutdown.
    Quit,
    /// SIGKILL: a crash.
    Kill,
}

/// Send `signal` to `child`. A child that has already exited (and not been
/// reaped) ignores it; the error is returned for the caller to log or drop.
pub fn signal(child: &Child, signal: Signal) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal as S, kill_process};
    let sig = match signal {
        Signal::Term => S::TERM,
        Signal::Int => S::INT,
        Signal::Quit => S::QUIT,
        Signal::Kill => S::KILL,
    };
    kill_process(Pid::from_child(child), sig).map_err(std::io::Error::from)
}
