//! `GET /api/orders/?limit=&cursor=`: the caller's orders, newest first.

use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    domain::{Cursor, query_params},
    http::{Caller, PageLimit, json_reply},
};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::OrderError;
use crate::model::{self, Order};

/// Where the next page starts: after this (created_at, id).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    id: Uuid,
}

impl Cursor for After {}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OrderPage)]
struct Page {
    /// Newest first.
    items: Vec<Order>,
    /// The `cursor` of the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A page of the caller's orders (keyset pagination: stable while orders are added).
#[utoipa::path(
    get,
    path = "/api/orders/",
    tag = "order",
    security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Orders per page (20 by default)"),
        ("cursor" = Option<String>, Query, max_length = 2048, description = "The `next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "The caller's orders, newest first", body = Page),
        (status = 400, description = "`INVALID_INPUT`: a bad `limit` or `cursor`, or an unknown parameter", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn list(
    db: Db,
    caller: Caller,
    query: Vec<(String, String)>,
) -> Result<Response, OrderError> {
    let params = query_params(query, &["limit", "cursor"])?;
    let limit = PageLimit::parse(params.get("limit").map(String::as_str))?.get();
    let cursor = params.get("cursor").map(|c| After::decode(c)).transpose()?;
    let user_id = caller.claims.sub;
    let page = db
        .run(move |conn| -> Result<Page, OrderError> {
            let (after_time, after_id) = match &cursor {
                Some(c) => (c.created_at, c.id),
                // Later than anything: the first page.
                None => (
                    OffsetDateTime::now_utc() + time::Duration::days(36_500),
                    Uuid::max(),
                ),
            };
            // One more than asked: whether there is a next page.
            let mut items = model::page(&mut **conn, user_id, (after_time, after_id), limit + 1)?;
            let more = items.len() as i64 > limit;
            items.truncate(limit as usize);
            let next_cursor = more.then(|| {
                let last = items.last().expect("a full page");
                After {
                    created_at: last.created_at,
                    id: last.id,
                }
                .encode()
            });
            Ok(Page { items, next_cursor })
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &page))
}
