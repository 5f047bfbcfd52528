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

#[derive(Serialize)]
struct Page {
    items: Vec<Order>,
    next_cursor: Option<String>,
}

/// A page of the caller's orders (keyset pagination: stable while orders are added).
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
