//! The database server: one database and role per service, and their dumps.

use super::setting;
use crate::{
    plan::{BackupPlan, DatabasePlan, PostgresPlan},
    policy,
    raw::{RawEnvironment, RawPlatform},
};

/// PostgreSQL of `environment`.
pub(super) fn resolve(raw: &RawPlatform, environment: &RawEnvironment) -> PostgresPlan {
    let pg = &environment.postgres;
    let mut databases: Vec<DatabasePlan> = raw
        .services
        .iter()
        .map(|(service, s)| DatabasePlan {
            name: s.database.clone(),
            role: s.database.clone(),
            service: service.clone(),
        })
        .collect();
    databases.sort_by(|a, b| a.name.cmp(&b.name));
    PostgresPlan {
        host: pg.host.clone(),
        version: pg.version,
        package: format!("postgresql_{}", pg.version),
        port: pg.port,
        socket_dir: "/run/postgresql".to_owned(),
        settings: pg
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), setting(v)))
            .collect(),
        access: policy::access_rules(&databases),
        backup: BackupPlan {
            schedule: pg.backup.schedule.clone(),
            compression: pg.backup.compression.as_str().to_owned(),
            location: pg.backup.location.clone(),
            databases: databases.iter().map(|d| d.name.clone()).collect(),
        },
        databases,
    }
}
