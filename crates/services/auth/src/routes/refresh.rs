//! `POST /api/auth/refresh`: rotate a refresh token.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_kit::http::{ErrorBody, ErrorResponse, json_reply, unexpected_response};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use crate::{
    Auth, User,
    tokens::{self, Tokens},
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last `Tokens`.
    refresh_token: String,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired, revoked or already spent.
    #[error("the refresh token is not valid; log in again")]
    InvalidToken,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(RefreshError);

impl ErrorResponse for RefreshError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            RefreshError::InvalidToken => (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN"),
            RefreshError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Spend `refresh_token` and issue the next one of its family. A spent
/// token presented again revokes the family: someone else has a copy.
///
/// The family row is locked first, as logout and reuse detection lock it:
/// whichever comes second sees what the first did, so a logout cannot miss
/// the token a concurrent refresh adds. Validity is the family's: revoked
/// or past its absolute lifetime, every token of it is refused.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the refresh token sent is spent", body = Tokens),
        (status = 400, description = "`INVALID_INPUT`", body = ErrorBody),
        (status = 401, description = "`INVALID_REFRESH_TOKEN`: unknown, spent (which revokes its session), revoked or past its session's end", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: nginx's authentication rate limit", body = ErrorBody),
    ),
)]
pub async fn refresh(auth: Arc<Auth>, body: RefreshRequest) -> Result<Response, RefreshError> {
    let hash = tokens::hash_refresh_token(&body.refresh_token);
    let state = auth.clone();
    let tokens = auth
        .db
        .run(move |conn| -> Result<tokens::Tokens, RefreshError> {
            let mut tx = conn.transaction()?;
            let Some(family) = lock_family_of(&mut tx, &hash)? else {
                return Err(RefreshError::InvalidToken);
            };
            // Read after the lock: a concurrent refresh has committed by now.
            let Some(token) = tx.query_opt(
                "SELECT id, spent_at FROM refresh_tokens WHERE token_hash = $1",
                &[&hash],
            )?
            else {
                return Err(RefreshError::InvalidToken);
            };
            let token_id: Uuid = token.get(0);
            let spent_at: Option<OffsetDateTime> = token.get(1);
            if family.revoked {
                return Err(RefreshError::InvalidToken);
            }
            if spent_at.is_some() {
                revoke_family(&mut tx, family.id)?;
                tx.commit()?;
                tracing::warn!(family = %family.id, user_id = %family.user.id, "a spent refresh token was presented again: family revoked");
                return Err(RefreshError::InvalidToken);
            }
            if family.expires_at <= OffsetDateTime::now_utc() {
                return Err(RefreshError::InvalidToken);
            }
            tx.execute("UPDATE refresh_tokens SET spent_at = now() WHERE id = $1", &[&token_id])?;
            let issued = tokens::issue(
                &state,
                &mut tx,
                family.user,
                tokens::Family {
                    id: family.id,
                    expires_at: family.expires_at,
                },
            )?;
            tx.commit()?;
            Ok(issued)
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &tokens))
}

/// A locked family row and its account.
pub(crate) struct LockedFamily {
    pub id: Uuid,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    pub user: User,
}

/// Lock the family of the token whose hash is `hash` (`FOR UPDATE`), if
/// the token exists.
pub(crate) fn lock_family_of(
    tx: &mut postgres::Transaction<'_>,
    hash: &[u8],
) -> Result<Option<LockedFamily>, postgres::Error> {
    let Some(token) = tx.query_opt(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
        &[&hash],
    )?
    else {
        return Ok(None);
    };
    let family: Uuid = token.get(0);
    // None only when pruning deleted the family in between.
    let Some(row) = tx.query_opt(
        "SELECT f.expires_at, f.revoked_at IS NOT NULL, u.id, u.email, u.display_name, u.role \
         FROM refresh_families f JOIN users u ON u.id = f.user_id \
         WHERE f.id = $1 FOR UPDATE OF f",
        &[&family],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(LockedFamily {
        id: family,
        expires_at: row.get(0),
        revoked: row.get(1),
        user: User {
            id: row.get(2),
            email: row.get(3),
            display_name: row.get(4),
            role: row.get(5),
        },
    }))
}

/// Revoke a family (locked by the caller) and, for the record, its tokens.
pub(crate) fn revoke_family(
    tx: &mut postgres::Transaction<'_>,
    family: Uuid,
) -> Result<(), postgres::Error> {
    tx.execute(
        "UPDATE refresh_families SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        &[&family],
    )?;
    tx.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        &[&family],
    )?;
    Ok(())
}
