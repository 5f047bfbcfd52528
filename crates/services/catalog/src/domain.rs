//! What a catalog request may ask for, validated: a [`ListQuery`] always has
//! a page size from 1 to 100, a category slug, search words safe to put in
//! a `tsquery`, and a cursor that belongs to its sort order.

use serde::{Deserialize, Serialize};
use teipsum_kit::{
    domain::{Category, Cursor as _, Invalid, query_params},
    http::PageLimit,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The orders the list offers. Each ends with the id, so that the order is
/// total and a cursor names one exact position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Most recently created first.
    Newest,
    /// Cheapest first (by amount; currencies are not converted).
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// By name, case-insensitively.
    Name,
}

impl Sort {
    /// From the `sort` parameter.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "newest" => Ok(Sort::Newest),
            "price_asc" => Ok(Sort::PriceAsc),
            "price_desc" => Ok(Sort::PriceDesc),
            "name" => Ok(Sort::Name),
            _ => Err(Invalid(
                "sort must be one of newest, price_asc, price_desc, name".to_owned(),
            )),
        }
    }
}

/// The position after which the next page starts: the sort key and id of
/// the last product of the previous page. Opaque to clients (base64url of
/// JSON) so that its content can change without breaking them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sort", rename_all = "snake_case")]
pub enum Cursor {
    /// After this creation time and id.
    Newest {
        /// Creation time of the last product.
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        id: Uuid,
    },
    /// After this price and id, ascending.
    PriceAsc {
        /// Price of the last product.
        price_minor: i64,
        id: Uuid,
    },
    /// After this price and id, descending.
    PriceDesc {
        /// Price of the last product.
        price_minor: i64,
        id: Uuid,
    },
    /// After this lowercased name and id.
    Name {
        /// Lowercased name of the last product.
        name: String,
        id: Uuid,
    },
}

impl teipsum_kit::domain::Cursor for Cursor {
    /// A control character (NUL above all) is never in a name we stored,
    /// and PostgreSQL refuses a NUL in text with an error.
    fn acceptable(&self) -> bool {
        match self {
            Cursor::Name { name, .. } => !name.chars().any(char::is_control),
            Cursor::Newest { .. } | Cursor::PriceAsc { .. } | Cursor::PriceDesc { .. } => true,
        }
    }
}

impl Cursor {
    /// The sort order this cursor walks.
    pub fn sort(&self) -> Sort {
        match self {
            Cursor::Newest { .. } => Sort::Newest,
            Cursor::PriceAsc { .. } => Sort::PriceAsc,
            Cursor::PriceDesc { .. } => Sort::PriceDesc,
            Cursor::Name { .. } => Sort::Name,
        }
    }
}

/// Search words, matched as prefixes against names and descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(Vec<String>);

impl Search {
    /// Longest `q` accepted, in characters.
    pub const MAX_CHARS: usize = 200;
    /// Most words used.
    pub const MAX_WORDS: usize = 8;

    /// The words of `raw`: runs of letters and digits, lowercased. Every
    /// other character separates words, so nothing of the `tsquery` syntax
    /// (`&|!():*'`) can come from the client.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!(
                "q must have at most {} characters",
                Self::MAX_CHARS
            )));
        }
        let words: Vec<String> = raw
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Err(Invalid("q must contain a word".to_owned()));
        }
        if words.len() > Self::MAX_WORDS {
            return Err(Invalid(format!(
                "q must have at most {} words",
                Self::MAX_WORDS
            )));
        }
        Ok(Search(words))
    }

    /// The text for `to_tsquery('simple', ...)`: every word, as a prefix.
    pub fn tsquery(&self) -> String {
        self.0
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// A checked `GET /api/products` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: PageLimit,
    pub sort: Sort,
    /// Where to start; its sort is `sort`.
    pub cursor: Option<Cursor>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only products matching these words.
    pub search: Option<Search>,
}

impl ListQuery {
    /// The parameters it may have.
    pub const PARAMETERS: [&str; 5] = ["limit", "cursor", "sort", "category", "q"];

    /// From the query string's pairs. Unknown or repeated parameters are
    /// refused (a misspelt `catgory=` would otherwise show everything, and
    /// junk parameters would split nginx's cache). An empty `q` or
    /// `category` is no filter, as an empty search box sends.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, Invalid> {
        let params = query_params(pairs, &Self::PARAMETERS)?;
        let limit = PageLimit::parse(params.get("limit").map(String::as_str))?;
        let cursor = params
            .get("cursor")
            .map(|c| Cursor::decode(c))
            .transpose()?;
        let sort = match (params.get("sort"), &cursor) {
            (Some(raw), _) => Sort::parse(raw)?,
            // The cursor knows the order it was made for.
            (None, Some(cursor)) => cursor.sort(),
            (None, None) => Sort::Newest,
        };
        if let Some(cursor) = &cursor
            && cursor.sort() != sort
        {
            return Err(Invalid(
                "cursor belongs to another sort order; start again without it".to_owned(),
            ));
        }
        let non_empty = |name: &str| params.get(name).filter(|v| !v.trim().is_empty());
        Ok(ListQuery {
            limit,
            sort,
            cursor,
            category: non_empty("category")
                .map(|c| Category::parse(c))
                .transpose()?,
            search: non_empty("q").map(|q| Search::parse(q)).transpose()?,
        })
    }
}

/// At or below this many units, a product is `low_stock`.
pub const LOW_STOCK: i64 = 5;

/// How much of a product there is, as shoppers see it: a coarse status,
/// never the count (which would tell a hoarder exactly what to take; admins
/// read the count from inventory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stock {
    /// In, low or out of stock.
    pub status: StockStatus,
}

/// A coarse stock level.
// The variants are the names clients read (`in_stock`, `low_stock`, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    /// More than [`LOW_STOCK`] units.
    InStock,
    /// 1 to [`LOW_STOCK`] units.
    LowStock,
    /// None (or nothing known yet).
    OutOfStock,
}

impl StockStatus {
    /// The name clients see (`low_stock`).
    pub fn as_str(self) -> &'static str {
        match self {
            StockStatus::InStock => "in_stock",
            StockStatus::LowStock => "low_stock",
            StockStatus::OutOfStock => "out_of_stock",
        }
    }
}

impl Stock {
    /// The stock of `quantity` available units.
    pub fn of(quantity: i64) -> Self {
        let status = match quantity {
            q if q <= 0 => StockStatus::OutOfStock,
            q if q <= LOW_STOCK => StockStatus::LowStock,
            _ => StockStatus::InStock,
        };
        Stock { status }
    }
}

#[cfg(test)]
mod tests {
    use teipsum_kit::domain::Cursor as _;

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ListQuery, String> {
        ListQuery::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_query_is_the_first_page_of_the_newest() {
        let q = query(&[]).unwrap();
        assert_eq!(q.limit.get(), 20);
        assert_eq!(q.sort, Sort::Newest);
        assert!(q.cursor.is_none() && q.category.is_none() && q.search.is_none());
        let q = query(&[("q", " "), ("category", "")]).unwrap();
        assert!(q.category.is_none() && q.search.is_none());
    }

    #[test]
    fn bad_parameters_are_named() {
        for (pairs, expected) in [
            (vec![("limit", "101")], "limit"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "-5")], "limit"),
            (vec![("limit", "9999999999999999999999")], "limit"),
            (vec![("sort", "price")], "sort"),
            (vec![("cursor", "garbage!")], "cursor"),
            (vec![("category", "Shirts & Tops")], "category"),
            (vec![("q", "!!!")], "word"),
            (vec![("limt", "5")], "unknown query parameter `limt`"),
            (vec![("limit", "5"), ("limit", "6")], "twice"),
        ] {
            let error = query(&pairs).unwrap_err();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
        let long = "x ".repeat(101);
        assert!(query(&[("q", &long)]).unwrap_err().contains("characters"));
        assert!(
            query(&[("q", "a b c d e f g h i")])
                .unwrap_err()
                .contains("words")
        );
    }

    #[test]
    fn cursors_round_trip_and_know_their_order() {
        let cursor = Cursor::PriceAsc {
            price_minor: 1999,
            id: Uuid::now_v7(),
        };
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        let q = query(&[("cursor", &text)]).unwrap();
        assert_eq!(q.sort, Sort::PriceAsc, "the order comes from the cursor");
        assert!(
            query(&[("cursor", &text), ("sort", "name")])
                .unwrap_err()
                .contains("another sort order")
        );
        let newest = Cursor::Newest {
            created_at: OffsetDateTime::now_utc(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&newest.encode()).unwrap(), newest);
    }

    #[test]
    fn cursors_with_control_characters_are_refused() {
        for name in ["a\u{0}b", "\u{1b}[2J", "tab\there"] {
            let cursor = Cursor::Name {
                name: name.to_owned(),
                id: Uuid::now_v7(),
            };
            let error = Cursor::decode(&cursor.encode()).unwrap_err();
            assert!(error.0.contains("cursor"), "{name:?}: {error}");
        }
    }

    #[test]
    fn search_words_cannot_inject_tsquery_syntax() {
        let s = Search::parse("Red  T-Shirt') | !x:*").unwrap();
        assert_eq!(s.tsquery(), "red:* & t:* & shirt:* & x:*");
        assert_eq!(Search::parse("Zoë").unwrap().tsquery(), "zoë:*");
    }

    #[test]
    fn stock_levels_have_three_names() {
        assert_eq!(Stock::of(0).status, StockStatus::OutOfStock);
        assert_eq!(Stock::of(1).status, StockStatus::LowStock);
        assert_eq!(Stock::of(5).status, StockStatus::LowStock);
        assert_eq!(Stock::of(6).status, StockStatus::InStock);
        assert_eq!(
            serde_json::to_value(Stock::of(1_000_000)).unwrap(),
            serde_json::json!({"status": "in_stock"}),
            "the count is not shown"
        );
    }
}
