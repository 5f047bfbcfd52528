//! `POST /api/auth/refresh`: rotate a refresh token.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_kit::http::{ErrorResponse, json_reply, unexpected_response};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use crate::{Auth, User, tokens};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
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
pub async fn refresh(auth: Arc<Auth>, body: RefreshRequest) -> Result<Response, RefreshError> {
    let hash = tokens::hash_refresh_token(&body.refresh_token);
    let state = auth.clone();
    let tokens = auth
        .db
        .run(move |conn| -> Result<tokens::Tokens, RefreshError> {
            let mut tx = conn.transaction()?;
            let Some(row) = tx.query_opt(
                "SELECT t.id, t.family_id, t.expires_at, t.spent_at, t.revoked_at, \
                        u.id, u.email, u.display_name, u.role \
                 FROM refresh_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 FOR UPDATE OF t",
                &[&hash],
            )?
            else {
                return Err(RefreshError::InvalidToken);
            };
            let token_id: Uuid = row.get(0);
            let family: Uuid = row.get(1);
            let expires_at: OffsetDateTime = row.get(2);
            let spent_at: Option<OffsetDateTime> = row.get(3);
            let revoked_at: Option<OffsetDateTime> = row.get(4);
            if spent_at.is_some() && revoked_at.is_none() {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                    &[&family],
                )?;
                tx.commit()?;
                tracing::warn!(%family, "a spent refresh token was presented again: family revoked");
                return Err(RefreshError::InvalidToken);
            }
            if revoked_at.is_some() || spent_at.is_some() || expires_at <= OffsetDateTime::now_utc() {
                return Err(RefreshError::InvalidToken);
            }
            tx.execute("UPDATE refresh_tokens SET spent_at = now() WHERE id = $1", &[&token_id])?;
            let user = User {
                id: row.get(5),
                email: row.get(6),
                display_name: row.get(7),
                role: row.get(8),
            };
            let issued = tokens::issue(&state, &mut tx, user, family)?;
            tx.commit()?;
            Ok(issued)
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &tokens))
}
