//! The TeIpsum platform spec: from `config.ncl` to one checked [`Plan`] per environment.
//!
//! ```text
//! config.ncl ──Nickel + platform.ncl contracts──▶ RawPlatform ──validate──▶ Spec { plans }
//! ```
//!
//! [`load_spec`] runs the whole pipeline and returns every problem it finds,
//! each naming the field it is about.

pub mod diagnostic;
pub mod fields;
pub mod load;
pub mod plan;
mod policy;
pub mod raw;
pub mod validate;

use std::path::Path;

pub use diagnostic::{Diagnostic, FieldPath, Violation};
pub use load::{LoadError, SCHEMA};
pub use plan::Plan;
pub use validate::Spec;

/// Evaluate, check and resolve the spec at `path`.
pub fn load_spec(path: &Path) -> Result<Spec, LoadError> {
    let raw = load::load(path)?;
    validate::validate(&raw).map_err(LoadError::Invalid)
}
