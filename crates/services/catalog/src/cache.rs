//! HTTP caching of catalog answers: an `ETag` on every 200, `If-None-Match`
//! answered with 304, and `Cache-Control: public, max-age=5`.
//!
//! Five seconds is the nginx micro-cache: a burst of shoppers on one page
//! costs one database query every five seconds, while a price change still
//! shows within seconds. Browsers revalidate with the ETag and get a 304
//! without a body when nothing changed.

use sha2::{Digest, Sha256};
use warp::{
    Reply,
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

/// The `Cache-Control` of catalog answers.
pub const CACHE_CONTROL: &str = "public, max-age=5";

/// A strong entity tag from the bytes of a body: any change of the body,
/// however small, changes the tag.
pub fn body_etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` (`header`) matches `etag`: `*`, or one of the
/// listed tags by weak comparison (RFC 9110 §13.1.2: `W/` is ignored).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    let header = header.trim();
    header == "*"
        || header.split(',').any(|tag| {
            let tag = tag.trim();
            tag.strip_prefix("W/").unwrap_or(tag) == etag
        })
}

/// A 200 with the JSON `body`, or a 304 without it when the client already
/// has this `etag`; both with the caching headers.
pub fn cached_json(body: Vec<u8>, etag: &str, if_none_match: Option<&str>) -> Response {
    let mut response = if none_match(if_none_match, etag) {
        let mut response = warp::reply().into_response();
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"7-3\"";
        assert!(none_match(Some("\"7-3\""), tag));
        assert!(none_match(Some("W/\"7-3\""), tag));
        assert!(none_match(Some("\"1-0\", \"7-3\""), tag));
        assert!(none_match(Some("*"), tag));
        assert!(!none_match(Some("\"7-4\""), tag));
        assert!(!none_match(Some("7-3"), tag));
        assert!(!none_match(None, tag));
    }

    #[test]
    fn body_tags_follow_the_bytes() {
        assert_eq!(body_etag(b"{}"), body_etag(b"{}"));
        assert_ne!(body_etag(b"{}"), body_etag(b"{ }"));
        assert_eq!(body_etag(b"{}").len(), 34);
    }

    #[test]
    fn a_matching_tag_gets_an_empty_304_with_the_headers() {
        let r = cached_json(b"{}".to_vec(), "\"1-0\"", Some("\"1-0\""));
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"1-0\"");
        assert_eq!(r.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let r = cached_json(b"{}".to_vec(), "\"1-0\"", None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
