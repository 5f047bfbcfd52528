//! `GET /api/products`.

use postgres::types::ToSql;
use serde::Serialize;
use teipsum_kit::{db::Db, domain::Cursor as _};
use warp::reply::Response;

use super::{COLUMNS, CatalogError, CatalogProduct, Row, VISIBLE};
use crate::{
    cache::{body_etag, cached_json},
    domain::{Cursor, ListQuery, Sort},
};

/// A page of the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CatalogPage)]
pub struct Page {
    /// In the order asked for.
    items: Vec<CatalogProduct>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A query parameter that can move to the blocking thread.
type Param = Box<dyn ToSql + Sync + Send>;

impl Sort {
    /// The ORDER BY of this sort; the same columns as its keyset condition.
    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "p.created_at DESC, p.id DESC",
            Sort::PriceAsc => "p.price_minor ASC, p.id ASC",
            Sort::PriceDesc => "p.price_minor DESC, p.id DESC",
            Sort::Name => "lower(p.name) ASC, p.id ASC",
        }
    }

    /// The cursor that starts after `row`.
    fn cursor_after(self, row: &Row) -> Cursor {
        let id = row.product.id;
        match self {
            Sort::Newest => Cursor::Newest {
                created_at: row.created_at,
                id,
            },
            Sort::PriceAsc => Cursor::PriceAsc {
                price_minor: row.product.price.amount_minor,
                id,
            },
            Sort::PriceDesc => Cursor::PriceDesc {
                price_minor: row.product.price.amount_minor,
                id,
            },
            Sort::Name => Cursor::Name {
                name: row.name_key.clone(),
                id,
            },
        }
    }
}

/// Add `value` to `params`; its placeholder (`$3`).
fn bind(params: &mut Vec<Param>, value: Param) -> String {
    params.push(value);
    format!("${}", params.len())
}

/// The SQL and parameters of one page. Only fixed fragments go into the
/// text; everything from the client is a parameter.
fn page_sql(query: &ListQuery) -> (String, Vec<Param>) {
    let mut sql = format!(
        "SELECT {COLUMNS} FROM products p LEFT JOIN stock s ON s.product_id = p.id WHERE {VISIBLE}"
    );
    let mut params: Vec<Param> = Vec::new();
    if let Some(category) = &query.category {
        let p = bind(&mut params, Box::new(category.as_str().to_owned()));
        sql.push_str(&format!(" AND p.category = {p}"));
    }
    if let Some(search) = &query.search {
        let p = bind(&mut params, Box::new(search.tsquery()));
        sql.push_str(&format!(" AND p.search @@ to_tsquery('simple', {p})"));
    }
    // Keyset: strictly after the last row of the previous page in the sort
    // order, so rows inserted meanwhile never shift or repeat what is left.
    match &query.cursor {
        None => {}
        Some(Cursor::Newest { created_at, id }) => {
            let (a, b) = (
                bind(&mut params, Box::new(*created_at)),
                bind(&mut params, Box::new(*id)),
            );
            sql.push_str(&format!(" AND (p.created_at, p.id) < ({a}, {b})"));
        }
        Some(Cursor::PriceAsc { price_minor, id }) => {
            let (a, b) = (
                bind(&mut params, Box::new(*price_minor)),
                bind(&mut params, Box::new(*id)),
            );
            sql.push_str(&format!(" AND (p.price_minor, p.id) > ({a}, {b})"));
        }
        Some(Cursor::PriceDesc { price_minor, id }) => {
            let (a, b) = (
                bind(&mut params, Box::new(*price_minor)),
                bind(&mut params, Box::new(*id)),
            );
            sql.push_str(&format!(" AND (p.price_minor, p.id) < ({a}, {b})"));
        }
        Some(Cursor::Name { name, id }) => {
            let (a, b) = (
                bind(&mut params, Box::new(name.clone())),
                bind(&mut params, Box::new(*id)),
            );
            sql.push_str(&format!(" AND (lower(p.name), p.id) > ({a}, {b})"));
        }
    }
    // One row more than the page tells whether there is a next page.
    let limit = bind(&mut params, Box::new(query.limit.get() + 1));
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {limit}",
        query.sort.order_by()
    ));
    (sql, params)
}

/// A page of the active products, in pages that stay stable while products
/// are added or change (keyset pagination on the sort key and the id).
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "catalog",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Products per page (20 by default)"),
        ("cursor" = Option<String>, Query, max_length = 2048, description = "The `next_cursor` of the page before, with the same `sort`"),
        ("category" = Option<String>, Query, max_length = 64, description = "Only this category (a slug such as `t-shirts`)"),
        ("q" = Option<String>, Query, max_length = 200, description = "Only products whose name or description has these words (at most 8)"),
        ("sort" = Option<Sort>, Query, description = "`newest` by default"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` read before: `304` while it still matches"),
    ),
    responses(
        (status = 200, description = "A page of active products", body = Page,
            headers(
                ("ETag" = String, description = "Of the page's body"),
                ("Cache-Control" = String, description = "`public, max-age=5`"),
            )),
        (status = 304, description = "Not modified since the `If-None-Match` tag"),
        (status = 400, description = "`INVALID_INPUT`: a bad parameter, a cursor that is not a `next_cursor`, or an unknown parameter", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn list(
    db: Db,
    pairs: Vec<(String, String)>,
    if_none_match: Option<String>,
) -> Result<Response, CatalogError> {
    let query = ListQuery::parse(pairs)?;
    let (sql, params) = page_sql(&query);
    let mut rows = db
        .run(move |conn| -> Result<Vec<Row>, CatalogError> {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            Ok(conn.query(&sql, &refs)?.iter().map(Row::from_row).collect())
        })
        .await?;
    let limit = query.limit.get() as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|row| query.sort.cursor_after(row).encode())
    } else {
        None
    };
    let page = Page {
        items: rows.into_iter().map(|row| row.product).collect(),
        next_cursor,
    };
    let body = serde_json::to_vec(&page).map_err(anyhow::Error::from)?;
    let etag = body_etag(&body);
    Ok(cached_json(body, &etag, if_none_match.as_deref()))
}
