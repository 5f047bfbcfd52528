//! `GET /api/orders/?limit=&cursor=`: the caller's orders, newest first.

use base64::Engine;
use serde::{Deserialize, Serialize};
use teipsum_kit::{
    db::Db,
    http::{Caller, json_reply},
};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::OrderError;
use crate::{
    domain::Invalid,
    model::{self, Order},
};

/// Largest page.
pub const MAX_LIMIT: i64 = 100;

/// Where the next page starts: after this (created_at, id).
#[derive(Serialize, Deserialize)]
struct Cursor {
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    id: Uuid,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Order>,
    next_cursor: Option<String>,
}

fn parse_query(raw: &str) -> Result<(i64, Option<Cursor>), Invalid> {
    let mut limit = 20;
    let mut cursor = None;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| Invalid(format!("limit must be 1 to {MAX_LIMIT}")))?;
            }
            "cursor" => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(value)
                    .map_err(|_| Invalid("cursor is not one this service gave out".to_owned()))?;
                cursor =
                    Some(serde_json::from_slice(&bytes).map_err(|_| {
                        Invalid("cursor is not one this service gave out".to_owned())
                    })?);
            }
            other => return Err(Invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    Ok((limit, cursor))
}

/// A page of the caller's orders (keyset pagination: stable while orders are added).
pub async fn list(db: Db, caller: Caller, query: String) -> Result<Response, OrderError> {
    let (limit, cursor) = parse_query(&query)?;
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
                let cursor = Cursor {
                    created_at: last.created_at,
                    id: last.id,
                };
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&cursor).expect("serializes"))
            });
            Ok(Page { items, next_cursor })
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &page))
}
