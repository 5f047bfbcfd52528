//! Databases: one safe identifier per service, none reserved, none shared.

use std::collections::BTreeMap;

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawPlatform,
    syntax::is_identifier,
};

/// Names that PostgreSQL or NixOS already use for databases, roles or system users.
const RESERVED_DATABASES: [&str; 9] = [
    "postgres",
    "template0",
    "template1",
    "root",
    "nobody",
    "nginx",
    "acme",
    "zookeeper",
    "kafka",
];

/// Each service's `database` (also its role and system user).
pub(super) fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, service) in &raw.services {
        let path = FieldPath::root()
            .field("services")
            .field(name)
            .field("database");
        let database = service.database.as_str();
        let reason = if !is_identifier(database) {
            Some(
                "use lowercase letters, digits and `_`, starting with a letter, at most 63 characters",
            )
        } else if RESERVED_DATABASES.contains(&database) {
            Some("this name is reserved by PostgreSQL or NixOS; use e.g. `teipsum_<service>`")
        } else {
            None
        };
        if let Some(reason) = reason {
            errors.push(Diagnostic::new(
                path,
                Violation::BadDatabase {
                    database: database.to_owned(),
                    reason,
                },
            ));
        } else if let Some(other) = owners.insert(database, name) {
            errors.push(Diagnostic::new(
                path,
                Violation::DuplicateDatabase {
                    database: database.to_owned(),
                    other: other.to_owned(),
                },
            ));
        }
    }
}
