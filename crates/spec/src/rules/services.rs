//! One service's port, micro-cache, order limits and removed options.

use super::{Bounds, duration_within};
use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawService,
};

/// The service at `path`: an unprivileged port, a short micro-cache (none on
/// authentication endpoints) and order windows within reason.
pub(super) fn check(path: &FieldPath, service: &RawService, errors: &mut Vec<Diagnostic>) {
    if service.port < 1024 {
        errors.push(Diagnostic::new(
            path.field("port"),
            Violation::PrivilegedPort { port: service.port },
        ));
    }
    if service.metrics_port < 1024 {
        errors.push(Diagnostic::new(
            path.field("metrics_port"),
            Violation::PrivilegedPort {
                port: service.metrics_port,
            },
        ));
    }
    duration_within(
        path.field("micro_cache"),
        service.micro_cache,
        Bounds {
            what: "the micro-cache lifetime",
            min: (0, "0s"),
            max: (60_000, "60s"),
        },
        errors,
    );
    // A cached login answer would hand one user's session to the next.
    if service.auth_endpoint && !service.micro_cache.is_zero() {
        errors.push(Diagnostic::new(
            path.field("micro_cache"),
            Violation::DurationOutOfRange {
                what: "the micro-cache of an authentication endpoint",
                value: service.micro_cache.to_string(),
                min: "0s",
                max: "0s",
            },
        ));
    }
    if let Some(limits) = &service.order_limits {
        let path = path.field("order_limits");
        duration_within(
            path.field("confirm_within"),
            limits.confirm_within,
            Bounds {
                what: "the confirmation window of an order",
                min: (1_000, "1s"),
                max: (7 * 86_400_000, "7d"),
            },
            errors,
        );
        duration_within(
            path.field("open_for"),
            limits.open_for,
            Bounds {
                what: "how long a confirmed order counts as open",
                min: (60_000, "1min"),
                max: (30 * 86_400_000, "30d"),
            },
            errors,
        );
    }
}

/// Options that no longer exist are errors that say what to do instead
/// (like NixOS's `mkRemovedOptionModule`).
pub(super) fn removed_options(
    path: &FieldPath,
    service: &RawService,
    errors: &mut Vec<Diagnostic>,
) {
    if service.admin_emails.is_some() {
        errors.push(Diagnostic::new(
            path.field("admin_emails"),
            Violation::RemovedOption {
                why: "registering a listed address granted the admin role without proof of owning it",
                instead: "delete the setting; an operator makes an existing account an administrator on the host with `teipsum-promote-admin --email <address>` (README, \"Deploying to a new server\", step 0)",
            },
        ));
    }
}
