//! The programs the stack runs, found before anything starts, each with how
//! to install it when it is missing.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use teipsum_spec::Plan;
use teipsum_testkit::{TANSU_HINT, postgres_bin_dir, tansu_bin, which};

use crate::DevError;

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Prerequisites {
    /// PostgreSQL server binaries ([`teipsum_testkit::postgres_bin_dir`]).
    pub pg_bin: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// tansu.
    pub tansu: PathBuf,
    /// Service binaries by service name.
    pub services: BTreeMap<String, PathBuf>,
}

/// The programs the stack runs: PostgreSQL as the testkit finds it
/// (`$TEIPSUM_PG_BIN` first), nginx, tansu, and each service's binary in
/// `bin_dir` or on `PATH`.
pub fn prerequisites(bin_dir: &Path, plan: &Plan) -> Result<Prerequisites, DevError> {
    let missing = |program: &str, hint: &str| DevError::Missing {
        program: program.to_owned(),
        hint: hint.to_owned(),
    };
    let pg_bin = postgres_bin_dir().map_err(DevError::PostgresMissing)?;
    let nginx = which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
        .ok_or_else(|| missing("nginx", "apt-get install nginx"))?;
    let tansu = Some(tansu_bin())
        .filter(|p| p.is_file())
        .ok_or_else(|| missing("tansu", TANSU_HINT))?;
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
