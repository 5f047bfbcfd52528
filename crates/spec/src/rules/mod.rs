//! The rules of the spec: [`RawPlatform`] → [`Valid`], or every problem found.
//!
//! Each rule module pushes [`Diagnostic`]s for one concern; all rules run, so
//! a user sees every problem at once. Only a spec that breaks no rule becomes
//! [`Valid`], which is all that resolution reads.

mod databases;
mod environment;
mod frontend;
mod headers;
mod hsts;
mod limits;
mod monitoring;
mod names;
mod routes;
mod secrets;
mod services;
mod topics;

use std::collections::BTreeSet;

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::{RawEnvironment, RawPlatform},
    topology::edge_host,
    units::Duration,
};

/// A spec that broke no rule, with each environment's placement decided.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    /// The spec; its `environments` were moved into [`Valid::environments`].
    pub platform: RawPlatform,
    /// The environments, sorted by name.
    pub environments: Vec<Environment>,
    /// Things that are allowed but probably unintended.
    pub warnings: Vec<Diagnostic>,
}

/// An environment of a [`Valid`] spec.
#[derive(Debug, Clone)]
pub(crate) struct Environment {
    /// Its name (`prod`).
    pub name: String,
    /// The host nginx and the services run on (declared in `hosts`).
    pub edge: String,
    /// The environment as written.
    pub spec: RawEnvironment,
}

impl TryFrom<RawPlatform> for Valid {
    type Error = Vec<Diagnostic>;

    fn try_from(mut raw: RawPlatform) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        check(&raw, &mut errors, &mut warnings);
        dedup(&mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let environments = std::mem::take(&mut raw.environments)
            .into_iter()
            .filter_map(|(name, spec)| {
                // `environment::placement` rejects an environment whose
                // components name no declared host, so every valid one has one.
                let edge = edge_host(&spec)?.to_owned();
                Some(Environment { name, edge, spec })
            })
            .collect();
        Ok(Valid {
            platform: raw,
            environments,
            warnings,
        })
    }
}

/// Every rule, in the order a user reads their findings: names, topics,
/// routes, databases, each service, the storefront, each environment.
fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) {
    names::check(raw, errors);
    topics::check(raw, errors, warnings);
    routes::check(raw, errors);
    databases::check(raw, errors);
    for (name, service) in &raw.services {
        let path = FieldPath::root().field("services").field(name);
        secrets::check(&path.field("secrets"), &service.secrets, errors);
        services::check(&path, service, errors);
        limits::check(&path, service, errors);
        services::removed_options(&path, service, errors);
    }
    frontend::check(raw, errors);
    environment::check_all(raw, errors);
    hsts::check(raw, errors);
    environment::warnings(raw, warnings);
}

/// The same problem found from two environments is reported once.
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    diagnostics.retain(|d| seen.insert((d.path.clone(), d.violation.to_string())));
}

/// Bounds of a duration, in milliseconds and as the message prints them.
struct Bounds {
    what: &'static str,
    min: (u64, &'static str),
    max: (u64, &'static str),
}

/// A duration outside its bounds is an error at `path`.
fn duration_within(
    path: FieldPath,
    value: Duration,
    Bounds { what, min, max }: Bounds,
    errors: &mut Vec<Diagnostic>,
) {
    if !(min.0..=max.0).contains(&value.millis()) {
        errors.push(Diagnostic::new(
            path,
            Violation::DurationOutOfRange {
                what,
                value: value.to_string(),
                min: min.1,
                max: max.1,
            },
        ));
    }
}
