//! Secrets: credential names systemd accepts, values that are paths of host
//! files outside the Nix store and never the secret itself.

use std::collections::BTreeMap;

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    syntax::{is_credential_name, looks_like_inline_secret, secret_path_problem},
};

/// The `secrets` of one service, at `path`.
pub(super) fn check(
    path: &FieldPath,
    secrets: &BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) {
    for (name, value) in secrets {
        let at = path.field(name);
        if !is_credential_name(name) {
            errors.push(Diagnostic::new(
                at.clone(),
                Violation::BadCredentialName { name: name.clone() },
            ));
        }
        file(at, name, value, errors);
    }
}

/// A secret given as a host file, at `at`: never the secret itself, never
/// a path in the Nix store or otherwise unusable.
pub(super) fn file(at: FieldPath, name: &str, value: &str, errors: &mut Vec<Diagnostic>) {
    if looks_like_inline_secret(value) {
        errors.push(Diagnostic::new(
            at,
            Violation::InlineSecret {
                name: name.to_owned(),
            },
        ));
    } else if let Some(reason) = secret_path_problem(value) {
        errors.push(Diagnostic::new(
            at,
            Violation::BadSecretPath {
                name: name.to_owned(),
                reason,
            },
        ));
    }
}
