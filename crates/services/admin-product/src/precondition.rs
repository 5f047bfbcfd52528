//! `If-Match` (RFC 9110 §13.1.1): optimistic concurrency for `PUT` and
//! `DELETE`. A client sends the ETag it read; a change made meanwhile by
//! someone else makes the tag stale and the request fails with 412 instead
//! of silently overwriting that change.

use teipsum_kit::http::ErrorResponse;
use warp::http::StatusCode;

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// The versions of a list of tags (`"3", W/"4"`).
    ///
    /// RFC 9110 compares `If-Match` strongly, so `W/"3"` would never match.
    /// But our tag is the product's version number, a strong validator of
    /// its state whatever the encoding, and the weak form only ever comes
    /// from nginx: its gzip filter weakens the ETag of every answer it
    /// compresses. Refusing it would make the tag a client read through the
    /// edge useless, so the version inside a weak tag counts too.
    Versions(Vec<i64>),
}

/// What is wrong with a request's precondition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreconditionError {
    /// No `If-Match`: a blind overwrite is refused (RFC 6585's 428).
    #[error("send If-Match with the ETag of the version you read, such as If-Match: \"3\"")]
    Required,
    /// An `If-Match` that is not a list of entity tags.
    #[error("If-Match must be an entity tag such as \"3\", or *")]
    Malformed,
}

impl ErrorResponse for PreconditionError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            PreconditionError::Required => {
                (StatusCode::PRECONDITION_REQUIRED, "PRECONDITION_REQUIRED")
            }
            PreconditionError::Malformed => (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        }
    }
}

impl IfMatch {
    /// Parse the header's value, if any.
    pub fn parse(header: Option<&str>) -> Result<IfMatch, PreconditionError> {
        let header = header.ok_or(PreconditionError::Required)?.trim();
        if header.is_empty() {
            return Err(PreconditionError::Required);
        }
        if header == "*" {
            return Ok(IfMatch::Any);
        }
        let mut versions = Vec::new();
        for tag in header.split(',').map(str::trim) {
            let quoted = tag.strip_prefix("W/").unwrap_or(tag);
            let inner = quoted
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
                .ok_or(PreconditionError::Malformed)?;
            // A well-formed tag that is not one of ours simply never matches.
            if let Ok(version) = inner.parse::<i64>() {
                versions.push(version);
            }
        }
        Ok(IfMatch::Versions(versions))
    }

    /// Whether the current `version` satisfies the precondition.
    pub fn matches(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_their_version_only_weak_or_strong() {
        let m = IfMatch::parse(Some("\"3\"")).unwrap();
        assert!(m.matches(3));
        assert!(!m.matches(4));
        let m = IfMatch::parse(Some("\"1\", \"4\"")).unwrap();
        assert!(m.matches(4));
        // nginx's gzip turns "3" into W/"3" on the way to the client.
        assert!(IfMatch::parse(Some("W/\"3\"")).unwrap().matches(3));
        assert!(!IfMatch::parse(Some("W/\"3\"")).unwrap().matches(4));
        assert!(!IfMatch::parse(Some("\"abc\"")).unwrap().matches(3));
        assert!(IfMatch::parse(Some("*")).unwrap().matches(7));
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(IfMatch::parse(None), Err(PreconditionError::Required));
        assert_eq!(IfMatch::parse(Some(" ")), Err(PreconditionError::Required));
        for bad in ["3", "\"3", "W/3", "\"3\"\"", "\"3\", 4"] {
            assert_eq!(
                IfMatch::parse(Some(bad)),
                Err(PreconditionError::Malformed),
                "{bad}"
            );
        }
    }
}
