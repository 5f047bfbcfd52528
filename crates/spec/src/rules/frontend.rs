//! The storefront's directory stays inside the repository.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawPlatform,
    syntax::is_repository_directory,
};

/// `frontend.root` (its route is checked with the others in `routes`).
pub(super) fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    let root = &raw.frontend.root;
    if !is_repository_directory(root) {
        errors.push(Diagnostic::new(
            FieldPath::root().field("frontend").field("root"),
            Violation::BadFrontendRoot { root: root.clone() },
        ));
    }
}
