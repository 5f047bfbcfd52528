//! Routes: plain URL prefixes, each owned by one service, none capturing another's.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawPlatform,
    syntax::is_route_prefix,
};

/// Every service route and the storefront's.
pub(super) fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    // Every route with its owner, the storefront first: it may be `/`,
    // which deliberately sits under everything else as the fallback.
    let mut routes: Vec<(FieldPath, &str, &str)> = Vec::new();
    let frontend_path = FieldPath::root().field("frontend").field("route");
    for (name, service) in &raw.services {
        for (i, prefix) in service.routes.iter().enumerate() {
            let path = FieldPath::root()
                .field("services")
                .field(name)
                .field("routes")
                .index(i);
            if !is_route_prefix(prefix) {
                errors.push(Diagnostic::new(
                    path,
                    Violation::BadRoute {
                        prefix: prefix.clone(),
                    },
                ));
                continue;
            }
            routes.push((path, prefix, name));
        }
    }
    for (i, (path, prefix, owner)) in routes.iter().enumerate() {
        if *prefix == raw.frontend.route {
            errors.push(Diagnostic::new(
                path.clone(),
                Violation::DuplicateRoute {
                    prefix: prefix.to_string(),
                    other: "the storefront".to_owned(),
                },
            ));
        }
        for (other_path, other_prefix, other_owner) in &routes[..i] {
            if prefix == other_prefix {
                errors.push(Diagnostic::new(
                    path.clone(),
                    Violation::DuplicateRoute {
                        prefix: prefix.to_string(),
                        other: format!("service `{other_owner}`"),
                    },
                ));
            } else if other_prefix.starts_with(prefix) {
                errors.push(Diagnostic::new(
                    path.clone(),
                    Violation::ShadowedRoute {
                        prefix: prefix.to_string(),
                        shadowed: other_prefix.to_string(),
                        other: other_owner.to_string(),
                    },
                ));
            } else if prefix.starts_with(other_prefix) {
                // The earlier, shorter prefix is the one that captures.
                errors.push(Diagnostic::new(
                    other_path.clone(),
                    Violation::ShadowedRoute {
                        prefix: other_prefix.to_string(),
                        shadowed: prefix.to_string(),
                        other: owner.to_string(),
                    },
                ));
            }
        }
    }
    if !is_route_prefix(&raw.frontend.route) {
        errors.push(Diagnostic::new(
            frontend_path,
            Violation::BadRoute {
                prefix: raw.frontend.route.clone(),
            },
        ));
    }
}
