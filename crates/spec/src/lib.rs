//! The TeIpsum platform spec: from `config.ncl` to one checked [`Plan`] per environment.
//!
//! ```text
//! config.ncl ──Nickel + platform.ncl──▶ RawPlatform ──rules (TryFrom)──▶ Valid ──resolve──▶ Spec { plans }
//! ```
//!
//! The stages keep parsing, checking and deriving apart (as ripgrep keeps its
//! low-level flags apart from the settings it derives from them):
//!
//! - `load` evaluates the file with Nickel and deserialises it into the typed
//!   raw model of `raw`: every duration, memory size and enum tag is parsed
//!   there, once, and a value that does not fit names its field;
//! - `rules` turns the raw model into a `Valid` spec or returns every problem
//!   found, each a [`Diagnostic`] naming its field;
//! - `resolve` turns a valid spec into plans; it cannot fail.
//!
//! [`load_spec`] runs the whole pipeline.

mod diagnostic;
mod fields;
mod load;
pub mod plan;
mod policy;
mod raw;
mod resolve;
mod rules;
mod syntax;
mod topology;
mod units;

use std::{collections::BTreeMap, path::Path};

pub use diagnostic::{Diagnostic, FieldPath, Location, Segment, Severity, Violation, render};
pub use load::{LoadError, SCHEMA};
pub use plan::Plan;

/// A spec that passed every check, resolved for each of its environments.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Platform name.
    pub name: String,
    /// One plan per environment, by name.
    pub plans: BTreeMap<String, Plan>,
    /// Things that are allowed but probably unintended.
    pub warnings: Vec<Diagnostic>,
}

/// Evaluate, check and resolve the spec at `path`.
pub fn load_spec(path: &Path) -> Result<Spec, LoadError> {
    let raw = load::load(path)?;
    let valid = rules::Valid::try_from(raw).map_err(LoadError::Invalid)?;
    Ok(resolve::spec(valid))
}
