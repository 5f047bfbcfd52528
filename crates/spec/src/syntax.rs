//! Syntax predicates the rules share: what a name, a database, a route, a
//! domain, a secret path or a header value may look like.
//!
//! Private to the crate: other crates read the [`crate::Plan`], whose values
//! passed these already.

/// A component name (service, topic, environment, host, platform):
/// lowercase letters, digits and `-`, starting with a letter.
pub(crate) fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

/// A PostgreSQL identifier that needs no quoting and doubles as a user name.
pub(crate) fn is_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// A server.properties key: lowercase words joined by `.` or `_`.
pub(crate) fn is_kafka_setting_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// `/`-rooted, printable, no query, fragment, whitespace or `..`.
pub(crate) fn is_route_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && !prefix.contains("..")
        && !prefix.contains("//")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
}

/// A relative directory inside the repository, without `..` or empty components.
pub(crate) fn is_repository_directory(root: &str) -> bool {
    !root.is_empty()
        && !root.starts_with('/')
        && !root.split('/').any(|c| c == ".." || c.is_empty())
        && root
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._".contains(&b))
}

/// A name systemd accepts in `LoadCredential=` (it becomes a file name).
pub(crate) fn is_credential_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether a secret "path" is really a secret value pasted into the spec.
pub(crate) fn looks_like_inline_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if lower.contains("-----begin")
        || lower.contains("private key")
        || value.contains("://")
        || value.chars().any(char::is_whitespace)
    {
        return true;
    }
    // `password=hunter2`, `token:abc`
    for marker in ["password", "passwd", "secret", "token", "apikey", "api_key"] {
        if let Some(i) = lower.find(marker) {
            let after = &lower[i + marker.len()..];
            if after.starts_with('=') || after.starts_with(':') {
                return true;
            }
        }
    }
    value.split('/').any(|component| {
        // A JWT or base64 JSON.
        component.starts_with("eyJ")
            // A long run of key material: base64/hex, no extension, mixed classes.
            || (component.len() >= 32
                && !component.contains('.')
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=_-".contains(&b))
                && component.bytes().any(|b| b.is_ascii_digit())
                && component.bytes().any(|b| b.is_ascii_uppercase())
                && component.bytes().any(|b| b.is_ascii_lowercase()))
    })
}

/// Why a secret path cannot be a host file that stays secret, if it cannot.
pub(crate) fn secret_path_problem(value: &str) -> Option<&'static str> {
    if !value.starts_with('/') {
        Some("it is not an absolute path")
    } else if value == "/nix/store" || value.starts_with("/nix/store/") {
        Some("files in /nix/store are readable by every user")
    } else if value.ends_with('/') {
        Some("it names a directory")
    } else if value.split('/').any(|c| c == ".." || c == ".") {
        Some("it contains `.` or `..` components")
    } else if value.chars().any(|c| c.is_control()) {
        Some("it contains control characters")
    } else {
        None
    }
}

/// A plain `local@domain` address (no quoted local parts, no comments).
pub(crate) fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && domain_problem(domain).is_none()
}

/// Why `domain` is not a public DNS name, if it is not.
pub(crate) fn domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("it is empty");
    }
    if domain.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("it has uppercase letters");
    }
    if domain.ends_with('.') {
        return Some("it ends with a dot");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some("it needs at least two labels, such as `example.org`");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Some("each label has 1 to 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label cannot start or end with `-`");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some("labels use only letters, digits and `-`");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("an IP address is not a domain name");
    }
    None
}

/// Printable ASCII that can sit inside an nginx double-quoted string.
pub(crate) fn is_header_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// 16 bytes in unpadded base64url: 22 characters.
pub(crate) fn is_cluster_id(id: &str) -> bool {
    use base64::Engine;
    id.len() == 22
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .is_ok_and(|bytes| bytes.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_must_be_public_dns_names() {
        assert_eq!(domain_problem("teipsum.store"), None);
        assert_eq!(domain_problem("stage.teipsum.store"), None);
        assert!(domain_problem("localhost").is_some());
        assert!(domain_problem("Teipsum.store").is_some());
        assert!(domain_problem("teipsum.store.").is_some());
        assert!(domain_problem("-a.store").is_some());
        assert!(domain_problem("a..store").is_some());
        assert!(domain_problem("tei_psum.store").is_some());
        assert!(domain_problem("10.0.0.1").is_some());
        assert!(domain_problem(&format!("{}.store", "a".repeat(64))).is_some());
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!(is_email("ops@teipsum.store"));
        assert!(is_email("first.last+tag@teipsum.store"));
        assert!(!is_email("ops"));
        assert!(!is_email("@teipsum.store"));
        assert!(!is_email("ops@localhost"));
        assert!(!is_email("o ps@teipsum.store"));
        assert!(!is_email(".ops@teipsum.store"));
    }

    #[test]
    fn secret_values_written_inline_are_recognised() {
        assert!(looks_like_inline_secret(
            "-----BEGIN PRIVATE KEY-----MC4CAQ"
        ));
        assert!(looks_like_inline_secret("/password=hunter2"));
        assert!(looks_like_inline_secret("postgres://u:p@db/x"));
        assert!(looks_like_inline_secret("/eyJhbGciOiJFZERTQSJ9"));
        assert!(looks_like_inline_secret(
            "/Zx8a9QmP3vLw2Rt7Yk1Hn5Bc0Df4Gj6K"
        ));
        assert!(looks_like_inline_secret("hunter2 hunter2"));
        assert!(!looks_like_inline_secret(
            "/var/lib/teipsum/secrets/jwt-ed25519.key"
        ));
        assert!(!looks_like_inline_secret(
            "/run/secrets/teipsum/token-signing.pem"
        ));
        assert!(!looks_like_inline_secret(
            "/run/agenix/teipsum-jwt-ed25519-private-key-file"
        ));
    }

    #[test]
    fn secret_paths_must_be_absolute_and_outside_the_store() {
        assert_eq!(
            secret_path_problem("/var/lib/teipsum/secrets/jwt.key"),
            None
        );
        assert!(secret_path_problem("secrets/jwt.key").is_some());
        assert!(secret_path_problem("/nix/store/abc-jwt.key").is_some());
        assert!(secret_path_problem("/var/lib/../etc/shadow").is_some());
        assert!(secret_path_problem("/var/lib/teipsum/").is_some());
    }

    #[test]
    fn credential_names_are_file_names() {
        assert!(is_credential_name("jwt-public-key"));
        assert!(is_credential_name("db.pem"));
        assert!(!is_credential_name("a/b"));
        assert!(!is_credential_name(".."));
        assert!(!is_credential_name(""));
    }

    #[test]
    fn route_prefixes_are_plain_paths() {
        assert!(is_route_prefix("/api/orders/"));
        assert!(is_route_prefix("/"));
        assert!(!is_route_prefix("api/orders/"));
        assert!(!is_route_prefix("/api/../admin/"));
        assert!(!is_route_prefix("/api//orders"));
        assert!(!is_route_prefix("/api/orders?x=1"));
        assert!(!is_route_prefix("/api/ord ers"));
    }

    #[test]
    fn identifiers_are_lowercase_and_short() {
        assert!(is_identifier("teipsum_order"));
        assert!(!is_identifier("teipsum-order"));
        assert!(!is_identifier("1order"));
        assert!(!is_identifier("Order"));
        assert!(!is_identifier(&"a".repeat(64)));
    }

    #[test]
    fn frontend_roots_stay_inside_the_repository() {
        assert!(is_repository_directory("frontend"));
        assert!(is_repository_directory("web/dist"));
        assert!(!is_repository_directory("/srv/www"));
        assert!(!is_repository_directory("../elsewhere"));
        assert!(!is_repository_directory("web//dist"));
        assert!(!is_repository_directory(""));
    }
}
