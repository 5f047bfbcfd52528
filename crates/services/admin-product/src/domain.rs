//! Product fields that validate on construction: a [`Sku`] is always 3 to 40
//! of `A-Z 0-9 -`, a [`Money`] is always a non-negative amount below 10^12
//! minor units in a currency of the allow-list, an [`ImageUrl`] is always
//! `https`. Handlers only ever store a [`ValidProduct`].

use std::fmt;

use serde::Deserialize;
use teipsum_kit::domain::{Category, Invalid, is_invisible, visible_line};

/// A stock-keeping unit: 3 to 40 of `A-Z`, `0-9` and `-`, uppercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// Trim, uppercase and check `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let sku = raw.trim().to_ascii_uppercase();
        let length_ok = (3..=40).contains(&sku.len());
        if !length_ok
            || !sku
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Invalid(
                "sku must have 3 to 40 letters, digits or dashes, such as TEE-RED-M".to_owned(),
            ));
        }
        Ok(Sku(sku))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The currencies prices may be in (ISO 4217). An allow-list rather than
/// "three letters": a typo such as `EUE` must not become a price nobody can pay.
pub const CURRENCIES: [&str; 16] = [
    "AUD", "BGN", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HUF", "JPY", "NOK", "NZD", "PLN",
    "RON", "SEK", "USD",
];

/// An ISO 4217 currency from [`CURRENCIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(&'static str);

impl Currency {
    /// Trim, uppercase and look up `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|c| **c == code)
            .map(|c| Currency(c))
            .ok_or_else(|| {
                Invalid(format!(
                    "price.currency must be one of {}",
                    CURRENCIES.join(", ")
                ))
            })
    }

    /// The code (`EUR`).
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An amount of money in integer minor units (cents) of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// Amounts are below this many minor units (ten billion euros): far
    /// above any product, far below where sums of order lines could overflow.
    pub const LIMIT: i64 = 1_000_000_000_000;

    /// A checked amount.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if !(0..Self::LIMIT).contains(&amount_minor) {
            return Err(Invalid(format!(
                "price.amount_minor must be an integer from 0 to {}",
                Self::LIMIT - 1
            )));
        }
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    /// The amount in minor units.
    pub fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }
}

/// A product name: 1 to 200 visible characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// Longest accepted name, in characters.
    pub const MAX: usize = 200;

    /// Trim and check `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        visible_line("name", raw, Self::MAX).map(Name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description: up to 5000 characters; line breaks and tabs allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Longest accepted description, in characters.
    pub const MAX: usize = 5000;

    /// Trim and check `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let text = raw.trim();
        if text.chars().count() > Self::MAX {
            return Err(Invalid(format!(
                "description must have at most {} characters",
                Self::MAX
            )));
        }
        if text
            .chars()
            .any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_invisible(c))
        {
            return Err(Invalid(
                "description must not contain control or invisible characters".to_owned(),
            ));
        }
        Ok(Description(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The URL of a product image: `https` only (no mixed content on the
/// storefront), a plain host name, no credentials, no spaces or quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUrl(String);

impl ImageUrl {
    /// Longest accepted URL.
    pub const MAX: usize = 2048;

    /// Check `raw`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || {
            Invalid(
                "image_urls must be https URLs such as https://cdn.teipsum.store/tee.jpg"
                    .to_owned(),
            )
        };
        let url = raw.trim();
        if url.len() > Self::MAX {
            return Err(Invalid(format!(
                "image_urls must have at most {} characters each",
                Self::MAX
            )));
        }
        let rest = url
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
            .ok_or_else(invalid)?;
        // Printable ASCII without what breaks out of an HTML attribute or a
        // CSS url(); non-ASCII must come percent-encoded.
        if !rest
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"'<>\\^`{|}".contains(&b))
        {
            return Err(invalid());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.contains('.')
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if !host_ok || !port_ok {
            return Err(invalid());
        }
        Ok(ImageUrl(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price as sent by the client.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Integer minor units (cents), 0 to 999 999 999 999.
    #[schema(minimum = 0, maximum = 999_999_999_999_i64)]
    pub amount_minor: i64,
    /// ISO 4217 code of an accepted currency: AUD, BGN, CAD, CHF, CZK, DKK,
    /// EUR, GBP, HUF, JPY, NOK, NZD, PLN, RON, SEK, USD (in any case).
    #[schema(example = "EUR")]
    pub currency: String,
}

/// The body of `POST` and `PUT` (a whole product: `PUT` replaces).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// 1 to 200 visible characters on one line.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Description; empty when absent. Up to 5000 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// 3 to 40 letters, digits and dashes, uppercased (`TEE-RED-M`).
    #[schema(min_length = 3, max_length = 40, example = "TEE-RED-M")]
    pub sku: String,
    /// The price.
    pub price: PriceInput,
    /// A slug of at most 64 lowercase letters, digits and single dashes (`t-shirts`).
    #[schema(min_length = 1, max_length = 64, example = "t-shirts")]
    pub category: String,
    /// Image URLs, `https` only; none when absent.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub image_urls: Vec<String>,
    /// Whether shoppers see it; true when absent.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

/// Most images one product may have.
pub const MAX_IMAGES: usize = 10;

/// A checked product.
#[derive(Debug, Clone)]
pub struct ValidProduct {
    pub name: Name,
    pub description: Description,
    pub sku: Sku,
    pub price: Money,
    pub category: Category,
    pub image_urls: Vec<ImageUrl>,
    /// Visible to shoppers.
    pub active: bool,
}

impl ProductInput {
    /// Check every field; the first problem is reported.
    pub fn validated(&self) -> Result<ValidProduct, Invalid> {
        if self.image_urls.len() > MAX_IMAGES {
            return Err(Invalid(format!(
                "image_urls must have at most {MAX_IMAGES} entries"
            )));
        }
        let currency = Currency::parse(&self.price.currency)?;
        Ok(ValidProduct {
            name: Name::parse(&self.name)?,
            description: Description::parse(&self.description)?,
            sku: Sku::parse(&self.sku)?,
            price: Money::new(self.price.amount_minor, currency)?,
            category: Category::parse(&self.category)?,
            image_urls: self
                .image_urls
                .iter()
                .map(|u| ImageUrl::parse(u))
                .collect::<Result<_, _>>()?,
            active: self.active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> Result<ValidProduct, String> {
        let input: ProductInput = serde_json::from_value(json).map_err(|e| e.to_string())?;
        input.validated().map_err(|e| e.to_string())
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "name": "Tee",
            "sku": "tee-red-m",
            "price": {"amount_minor": 1999, "currency": "eur"},
            "category": "T-Shirts",
        })
    }

    #[test]
    fn a_minimal_product_is_normalised() {
        let p = input(base()).unwrap();
        assert_eq!(p.sku.as_str(), "TEE-RED-M");
        assert_eq!(p.price.currency().as_str(), "EUR");
        assert_eq!(p.price.amount_minor(), 1999);
        assert_eq!(p.category.as_str(), "t-shirts");
        assert_eq!(p.description.as_str(), "");
        assert!(p.active);
        assert!(p.image_urls.is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                "price",
                serde_json::json!({"amount_minor": -1, "currency": "EUR"}),
                "amount_minor",
            ),
            (
                "price",
                serde_json::json!({"amount_minor": 1_000_000_000_000_i64, "currency": "EUR"}),
                "amount_minor",
            ),
            (
                "price",
                serde_json::json!({"amount_minor": 19.99, "currency": "EUR"}),
                "invalid type",
            ),
            (
                "price",
                serde_json::json!({"amount_minor": 1, "currency": "XXX"}),
                "currency",
            ),
            (
                "price",
                serde_json::json!({"amount_minor": 1, "currency": "EUR", "tax": 1}),
                "unknown field",
            ),
            ("sku", "ab".into(), "sku"),
            ("sku", "TEE RED".into(), "sku"),
            ("sku", "TÉE".into(), "sku"),
            ("name", "  ".into(), "name"),
            ("name", "a\u{202E}b".into(), "name"),
            ("category", "Shirts & Tops".into(), "category"),
            ("category", "a--b".into(), "category"),
            (
                "image_urls",
                serde_json::json!(["http://cdn.example.org/a.jpg"]),
                "https",
            ),
            (
                "image_urls",
                serde_json::json!(["https://user:pw@cdn.example.org/a.jpg"]),
                "https",
            ),
            (
                "image_urls",
                serde_json::json!(["https://cdn.example.org/a b.jpg"]),
                "https",
            ),
            (
                "image_urls",
                serde_json::json!(["javascript:alert(1)"]),
                "https",
            ),
            ("role", "admin".into(), "unknown field"),
        ];
        for (field, value, expected) in cases {
            let mut v = base();
            v[field] = value.clone();
            let error = input(v).unwrap_err();
            assert!(error.contains(expected), "{field}={value}: {error}");
        }
        let mut v = base();
        v["image_urls"] = serde_json::json!(vec!["https://cdn.example.org/a.jpg"; 11]);
        assert!(input(v).unwrap_err().contains("at most 10"));
    }

    #[test]
    fn image_urls_are_https_with_a_plain_host() {
        for good in [
            "https://cdn.teipsum.store/tee.jpg",
            "HTTPS://cdn.teipsum.store:8443/a/b.png?w=200#x",
            "https://img.example.org/%C3%A9t%C3%A9.jpg",
        ] {
            assert!(ImageUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "https://",
            "https://localhost/a.jpg",
            "https://cdn.example.org:0/a.jpg",
            "https://cdn.example.org:99999/a.jpg",
            "https://-cdn.example.org/a.jpg",
            "https://cdn.example.org/\"onerror=\"x",
            "ftp://cdn.example.org/a.jpg",
        ] {
            assert!(ImageUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
