//! What a customer may ask for, validated.

use std::collections::BTreeSet;

use serde::Deserialize;
use teipsum_kit::domain::Invalid;
use uuid::Uuid;

/// Most units of one product in one order.
pub const MAX_QUANTITY: i32 = 1_000;
/// Most lines in one order.
pub const MAX_LINES: usize = 50;

/// A line as sent by the client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The product (a UUID).
    #[schema(format = Uuid)]
    product_id: String,
    /// Units: 1 to 1000 (and at most the spec's `max_units_per_product`, `422 QUANTITY_LIMIT` above it).
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

/// The body of `POST /api/orders/`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// One line per product.
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<LineRequest>,
}

/// A checked line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// The product.
    pub product_id: Uuid,
    /// 1 to [`MAX_QUANTITY`] units.
    pub quantity: i32,
}

impl OrderRequest {
    /// The lines, sorted by product, or what is wrong with them.
    pub fn lines(&self) -> Result<Vec<Line>, Invalid> {
        if self.items.is_empty() {
            return Err(Invalid("an order needs at least one item".to_owned()));
        }
        if self.items.len() > MAX_LINES {
            return Err(Invalid(format!("an order has at most {MAX_LINES} items")));
        }
        let mut seen = BTreeSet::new();
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let product_id = Uuid::parse_str(&item.product_id)
                .map_err(|_| Invalid(format!("items[{i}].product_id is not a product id")))?;
            if !(1..=i64::from(MAX_QUANTITY)).contains(&item.quantity) {
                return Err(Invalid(format!(
                    "items[{i}].quantity must be 1 to {MAX_QUANTITY}"
                )));
            }
            if !seen.insert(product_id) {
                return Err(Invalid(format!(
                    "items[{i}] repeats product {product_id}; put the whole quantity on one line"
                )));
            }
            lines.push(Line {
                product_id,
                quantity: item.quantity as i32,
            });
        }
        lines.sort();
        Ok(lines)
    }
}

/// An `Idempotency-Key` header value: 1 to 200 printable ASCII characters.
pub fn idempotency_key(raw: &str) -> Result<String, Invalid> {
    if raw.is_empty() || raw.len() > 200 || !raw.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Invalid(
            "Idempotency-Key must be 1 to 200 printable characters".to_owned(),
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(json: serde_json::Value) -> Result<Vec<Line>, String> {
        serde_json::from_value::<OrderRequest>(json)
            .map_err(|e| e.to_string())?
            .lines()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lines_are_checked_and_sorted() {
        let a = "00000000-0000-0000-0000-00000000000a";
        let b = "00000000-0000-0000-0000-00000000000b";
        let ok = lines(serde_json::json!({"items": [{"product_id": b, "quantity": 2}, {"product_id": a, "quantity": 1}]})).unwrap();
        assert_eq!(ok[0].product_id.to_string(), a);
        for (bad, expect) in [
            (serde_json::json!({"items": []}), "at least one"),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": 0}]}),
                "quantity",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": -3}]}),
                "quantity",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": 1001}]}),
                "quantity",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": 99999999999999u64}]}),
                "quantity",
            ),
            (
                serde_json::json!({"items": [{"product_id": "x", "quantity": 1}]}),
                "product_id",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": 1}, {"product_id": a, "quantity": 2}]}),
                "repeats",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": "1"}]}),
                "invalid type",
            ),
            (
                serde_json::json!({"items": [{"product_id": a, "quantity": 1, "price": 0}]}),
                "unknown field",
            ),
        ] {
            let err = lines(bad.clone()).unwrap_err();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert!(idempotency_key("checkout-42").is_ok());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(201)).is_err());
    }
}
