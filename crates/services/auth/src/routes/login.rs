//! `POST /api/auth/login`.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_kit::{
    events::{self, Envelope},
    http::{ErrorResponse, json_reply, unexpected_response},
};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use crate::{Auth, User, domain::Email, passwords, tokens};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// What can go wrong. Unknown e-mail and wrong password are one case, on purpose.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No account with this e-mail and password.
    #[error("the e-mail or the password is wrong")]
    InvalidCredentials,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(LoginError);

impl ErrorResponse for LoginError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            LoginError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
            LoginError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Check the password and start a session.
pub async fn login(auth: Arc<Auth>, body: LoginRequest) -> Result<Response, LoginError> {
    // A malformed address cannot have an account: same answer, same work.
    let email = Email::parse(&body.email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let found = auth
        .db
        .run(move |conn| -> Result<Option<(User, String)>, LoginError> {
            let row = conn.query_opt(
                "SELECT id, email, display_name, role, password_hash FROM users WHERE email = $1",
                &[&email],
            )?;
            Ok(row.map(|r| (User::from_row(&r), r.get("password_hash"))))
        })
        .await?;
    // Unknown users are checked against a dummy hash so that both failures
    // take the time of one argon2 verification.
    let stored = found
        .as_ref()
        .map_or_else(|| auth.dummy_hash.clone(), |(_, hash)| hash.clone());
    let matches = passwords::verify_blocking(body.password, stored).await;
    let user = match (found, matches) {
        (Some((user, _)), true) => user,
        _ => return Err(LoginError::InvalidCredentials),
    };
    let state = auth.clone();
    let tokens = auth
        .db
        .run(move |conn| -> Result<tokens::Tokens, LoginError> {
            let mut tx = conn.transaction()?;
            let user_id = user.id;
            let issued = tokens::issue(&state, &mut tx, user, Uuid::now_v7())?;
            let at = OffsetDateTime::now_utc();
            let event = Envelope::new(
                "auth",
                "user-login",
                1,
                user_id,
                serde_json::json!({
                    "user_id": user_id,
                    "at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                }),
            );
            events::append(&mut tx, "user-login", &event)?;
            tx.commit()?;
            Ok(issued)
        })
        .await?;
    tracing::info!(user_id = %tokens.user.id, "logged in");
    Ok(json_reply(StatusCode::OK, &tokens))
}
