//! The vocabulary of requests and answers that several services share,
//! written once so that one rule has one message: the validation error
//! [`Invalid`], text checks ([`is_invisible`], [`visible_line`]), the
//! [`Category`] slug, the [`Price`] clients see, opaque page [`Cursor`]s,
//! [`query_params`] and ids in paths ([`PathId`]).

use std::{collections::BTreeMap, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::StatusCode;
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::http::ErrorResponse;

/// Why a request was refused: `400 INVALID_INPUT` with this message, which
/// names the field and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    /// A refusal saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Invalid(message.into())
    }
}

impl ErrorResponse for Invalid {
    fn response(&self) -> (StatusCode, &'static str) {
        (StatusCode::BAD_REQUEST, "INVALID_INPUT")
    }
}

/// Characters that render as nothing or reorder text (bidi overrides,
/// zero-width spaces): used to make one name look like another.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `raw` trimmed, if it is 1 to `max` characters on one line with nothing
/// invisible; the refusal names `field`.
pub fn visible_line(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let text = raw.trim();
    let length = text.chars().count();
    if length == 0 || length > max {
        return Err(Invalid(format!("{field} must have 1 to {max} characters")));
    }
    if text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(Invalid(format!(
            "{field} must not contain control or invisible characters"
        )));
    }
    Ok(text.to_owned())
}

/// A category slug such as `t-shirts`: lowercase letters and digits in
/// words joined by single dashes, at most 64 characters. A slug, so that
/// `?category=` in catalog URLs needs no escaping and `Shirts`/`shirts`
/// cannot become two categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category(String);

impl Category {
    /// Trim, lowercase and check `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let slug = raw.trim().to_ascii_lowercase();
        let words_ok = slug.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if slug.is_empty() || slug.len() > 64 || !words_ok {
            return Err(Invalid(
                "category must be a slug of at most 64 lowercase letters, digits and single dashes, such as t-shirts".to_owned(),
            ));
        }
        Ok(Category(slug))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price as clients see it: `{"amount_minor": 1999, "currency": "EUR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Price {
    /// Integer minor units (cents).
    #[schema(minimum = 0, maximum = 999_999_999_999_i64)]
    pub amount_minor: i64,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// Where the next page of a list starts (keyset pagination), opaque to
/// clients: base64url of the JSON of the position, so that its content can
/// change without breaking them. A list's `next_cursor` is
/// [`Cursor::encode`]; its `cursor` parameter is [`Cursor::decode`]d.
pub trait Cursor: Serialize + DeserializeOwned {
    /// Longest cursor accepted (a name of 200 characters fits).
    const MAX: usize = 2048;

    /// Whether a cursor that decoded may be used (one made by hand can hold
    /// values this service never gave out).
    fn acceptable(&self) -> bool {
        true
    }

    /// The `next_cursor` text.
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    /// From the `cursor` parameter.
    fn decode(raw: &str) -> Result<Self, Invalid> {
        Some(raw)
            .filter(|r| r.len() <= Self::MAX)
            .and_then(|r| URL_SAFE_NO_PAD.decode(r.trim_end_matches('=')).ok())
            .and_then(|bytes| serde_json::from_slice::<Self>(&bytes).ok())
            .filter(Self::acceptable)
            .ok_or_else(|| {
                Invalid("cursor is not valid; pass the next_cursor of a page".to_owned())
            })
    }
}

/// Query parameters by name: unknown and repeated names are refused, so
/// that a misspelt `limt=` is an error rather than silently ignored (and
/// junk parameters cannot split nginx's cache).
pub fn query_params(
    pairs: Vec<(String, String)>,
    known: &[&str],
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut params = BTreeMap::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(Invalid(format!(
                "unknown query parameter `{name}`; known: {}",
                known.join(", ")
            )));
        }
        if params.insert(name.clone(), value).is_some() {
            return Err(Invalid(format!("query parameter `{name}` is given twice")));
        }
    }
    Ok(params)
}

/// The id segment of a path such as `/api/orders/{id}`, for `warp::path!`.
/// An empty segment does not match (`/api/products/` is the collection);
/// anything else does, and [`PathId::uuid`] refuses what is not a UUID with
/// a 400 (not a 404, so that the client sees its own mistake) in the
/// handler, after the route's authentication has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathId(String);

/// An empty path segment: not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an empty path segment is not an id")]
pub struct EmptySegment;

impl FromStr for PathId {
    type Err = EmptySegment;

    fn from_str(raw: &str) -> Result<Self, EmptySegment> {
        if raw.is_empty() {
            Err(EmptySegment)
        } else {
            Ok(PathId(raw.to_owned()))
        }
    }
}

impl PathId {
    /// The UUID it holds; the refusal names `what` (`the order id must be a UUID`).
    pub fn uuid(&self, what: &str) -> Result<Uuid, Invalid> {
        Uuid::parse_str(&self.0).map_err(|_| Invalid(format!("the {what} id must be a UUID")))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct After {
        after: Uuid,
    }
    impl Cursor for After {}

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = After {
            after: Uuid::now_v7(),
        };
        assert_eq!(After::decode(&cursor.encode()).unwrap(), cursor);
        assert_eq!(
            After::decode(&format!("{}==", cursor.encode())).unwrap(),
            cursor
        );
        for bad in ["", "!!!", "e30", "eyJhZnRlciI6MX0"] {
            assert!(After::decode(bad).is_err(), "{bad}");
        }
        assert!(After::decode(&"e".repeat(3000)).is_err());
    }

    #[test]
    fn categories_are_slugs() {
        assert_eq!(Category::parse(" T-Shirts ").unwrap().as_str(), "t-shirts");
        for bad in ["", "Shirts & Tops", "a--b", "-a", "a-", &"a".repeat(65)] {
            assert!(Category::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn visible_lines_are_trimmed_and_bounded() {
        assert_eq!(visible_line("name", "  Ana  ", 64).unwrap(), "Ana");
        assert!(visible_line("name", "   ", 64).is_err());
        assert!(visible_line("name", "Ana\u{202E}nimda", 64).is_err());
        assert!(visible_line("name", "Ana\nB", 64).is_err());
        assert!(
            visible_line("name", &"x".repeat(65), 64)
                .unwrap_err()
                .0
                .contains("1 to 64")
        );
    }

    #[test]
    fn path_ids_are_non_empty_and_name_what_is_wrong() {
        assert!("".parse::<PathId>().is_err());
        let id = Uuid::now_v7();
        assert_eq!(
            id.to_string()
                .parse::<PathId>()
                .unwrap()
                .uuid("order")
                .unwrap(),
            id
        );
        assert_eq!(
            "x".parse::<PathId>().unwrap().uuid("order").unwrap_err().0,
            "the order id must be a UUID"
        );
    }

    #[test]
    fn query_parameters_are_known_and_given_once() {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            query_params(pairs(&[("limit", "5")]), &["limit"]).unwrap()["limit"],
            "5"
        );
        assert!(
            query_params(pairs(&[("limt", "5")]), &["limit"])
                .unwrap_err()
                .0
                .contains("`limt`")
        );
        assert!(
            query_params(pairs(&[("limit", "5"), ("limit", "6")]), &["limit"])
                .unwrap_err()
                .0
                .contains("twice")
        );
    }
}
