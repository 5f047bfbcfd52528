//! The edge's response headers: the security baseline is there, values are
//! sendable, and no Content-Security-Policy allows inline or eval'd scripts.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawNginx,
    syntax::is_header_text,
};

/// Headers the security baseline requires on every response.
const REQUIRED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
];

/// `nginx.security_headers`, `nginx.api_csp` and `nginx.frontend_csp` at `nginx`.
pub(super) fn check(raw: &RawNginx, nginx: &FieldPath, errors: &mut Vec<Diagnostic>) {
    for header in REQUIRED_HEADERS {
        if !raw.security_headers.contains_key(header) {
            errors.push(Diagnostic::new(
                nginx.field("security_headers"),
                Violation::MissingSecurityHeader { header },
            ));
        }
    }
    for (header, value) in &raw.security_headers {
        if !is_header_text(header) || !is_header_text(value) || header.contains(' ') {
            errors.push(Diagnostic::new(
                nginx.field("security_headers").field(header.as_str()),
                Violation::BadHeader {
                    name: header.clone(),
                },
            ));
        }
    }
    for (field, csp) in [
        ("api_csp", &raw.api_csp),
        ("frontend_csp", &raw.frontend_csp),
    ] {
        if !is_header_text(csp) {
            errors.push(Diagnostic::new(
                nginx.field(field),
                Violation::BadHeader {
                    name: "Content-Security-Policy".to_owned(),
                },
            ));
        }
        for directive in ["'unsafe-inline'", "'unsafe-eval'"] {
            if csp.contains(directive) {
                errors.push(Diagnostic::new(
                    nginx.field(field),
                    Violation::UnsafeCsp { directive },
                ));
            }
        }
    }
}
