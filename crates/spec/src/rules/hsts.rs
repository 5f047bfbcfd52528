//! HSTS `includeSubDomains` on one environment's domain must not cover
//! another environment served with untrusted (staging) certificates: under
//! HSTS a browser offers no click-through, so that environment would be
//! unreachable in every browser that ever visited the first.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawPlatform,
};

/// Every environment's `Strict-Transport-Security` against the others' CAs.
pub(super) fn check(raw: &RawPlatform, errors: &mut Vec<Diagnostic>) {
    for (name, environment) in &raw.environments {
        let Some((header, hsts)) = environment
            .nginx
            .security_headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case("Strict-Transport-Security"))
        else {
            continue;
        };
        let covers_subdomains = hsts
            .split(';')
            .any(|d| d.trim().eq_ignore_ascii_case("includeSubDomains"));
        if !covers_subdomains {
            continue;
        }
        let suffix = format!(".{}", environment.domain);
        for (other, other_env) in &raw.environments {
            if other != name
                && other_env.domain.ends_with(&suffix)
                && !other_env.acme.ca.is_trusted()
            {
                errors.push(Diagnostic::new(
                    FieldPath::root()
                        .field("environments")
                        .field(name)
                        .field("nginx")
                        .field("security_headers")
                        .field(header.as_str()),
                    Violation::HstsCoversUntrusted {
                        subdomain: other_env.domain.clone(),
                        other: other.clone(),
                    },
                ));
            }
        }
    }
}
