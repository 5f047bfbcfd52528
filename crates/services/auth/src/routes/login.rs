//! `POST /api/auth/login`.

use std::sync::Arc;

use prometheus_client::metrics::{counter::Counter, family::Family};
use serde::Deserialize;
use teipsum_events::{Event, UserLogin};
use teipsum_kit::{
    http::{ErrorBody, ErrorResponse, json_reply, unexpected_response},
    metrics::Metrics,
};
use time::OffsetDateTime;
use warp::{http::StatusCode, reply::Response};

use crate::{
    Auth, User,
    domain::Email,
    passwords,
    tokens::{self, Tokens},
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's address, in any case.
    email: String,
    /// Its password.
    password: String,
}

/// Failed logins in a row an account takes before it makes the next one wait.
pub const FREE_FAILURES: i32 = 5;
/// The longest wait, in seconds; the wait doubles from 1 s up to it.
pub const MAX_WAIT_SECS: f64 = 900.0;

/// What can go wrong. Unknown e-mail and wrong password are one case, on purpose.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No account with this e-mail and password.
    #[error("the e-mail or the password is wrong")]
    InvalidCredentials,
    /// The account had too many failed logins in a row and waits.
    #[error("too many failed logins for this account; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the account takes attempts again.
        retry_after_secs: u64,
    },
    /// Every password hashing slot is taken.
    #[error(transparent)]
    Busy(#[from] passwords::Busy),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(LoginError);

impl super::RetryAfter for LoginError {
    fn retry_after(&self) -> Option<u64> {
        match self {
            LoginError::Throttled { retry_after_secs } => Some(*retry_after_secs),
            LoginError::Busy(_) => Some(super::BUSY_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

impl ErrorResponse for LoginError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            LoginError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
            LoginError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS"),
            LoginError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "BUSY"),
            LoginError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Logins by outcome: `success`, `rejected` (unknown e-mail or wrong
/// password, one case as for the client), `throttled` (the account waits),
/// `busy` (no hashing slot) and `error`. Never who: no address or id is a
/// label.
#[derive(Debug, Clone)]
pub(crate) struct Logins(Family<[(&'static str, &'static str); 1], Counter>);

impl Logins {
    /// The family, registered, every outcome at 0.
    pub fn register(metrics: &Metrics) -> Self {
        let logins = Logins(Family::default());
        for outcome in ["success", "rejected", "throttled", "busy", "error"] {
            let _ = logins.0.get_or_create(&[("outcome", outcome)]);
        }
        metrics.register(
            "teipsum_auth_logins",
            "Login attempts by outcome",
            logins.0.clone(),
        );
        logins
    }

    /// Count the outcome of one attempt.
    fn count<T>(&self, result: &Result<T, LoginError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(LoginError::InvalidCredentials) => "rejected",
            Err(LoginError::Throttled { .. }) => "throttled",
            Err(LoginError::Busy(_)) => "busy",
            Err(LoginError::Unexpected(_)) => "error",
        };
        self.0.get_or_create(&[("outcome", outcome)]).inc();
    }
}

/// An account as login finds it.
struct Account {
    user: User,
    password_hash: String,
    /// Seconds the account still waits after failed logins, if it does.
    waits_secs: Option<i64>,
}

/// Check the password and start a session.
///
/// Each account has its own throttle, kept in its row: after
/// [`FREE_FAILURES`] failed logins in a row every further failure makes the
/// account wait twice as long (1 s, 2 s, 4 s ... up to [`MAX_WAIT_SECS`]);
/// an attempt during the wait is refused with 429 and `Retry-After` before
/// the password is looked at. A success resets the count.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session's tokens", body = Tokens),
        (status = 400, description = "`INVALID_INPUT`: the body is not a login", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`, for an unknown e-mail and a wrong password alike", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_ATTEMPTS` (the account waits after 5 failures; `Retry-After`) or `TOO_MANY_REQUESTS` (nginx's authentication rate limit)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`BUSY` (`Retry-After: 1`) or `UNAVAILABLE`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn login(auth: Arc<Auth>, body: LoginRequest) -> Result<Response, LoginError> {
    let logins = auth.logins.clone();
    let result = attempt(auth, body).await;
    logins.count(&result);
    result
}

/// [`login`], uncounted.
async fn attempt(auth: Arc<Auth>, body: LoginRequest) -> Result<Response, LoginError> {
    // A malformed address cannot have an account: same answer, same work.
    let email = Email::parse(&body.email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let found = auth
        .db
        .run(move |conn| -> Result<Option<Account>, LoginError> {
            let row = conn.query_opt(
                "SELECT id, email, display_name, role, password_hash, \
                        CASE WHEN locked_until > now() \
                             THEN ceil(extract(epoch FROM locked_until - now()))::bigint END AS waits \
                 FROM users WHERE email = $1",
                &[&email],
            )?;
            Ok(row.map(|r| Account {
                user: User::from_row(&r),
                password_hash: r.get("password_hash"),
                waits_secs: r.get("waits"),
            }))
        })
        .await?;
    if let Some(Account {
        user,
        waits_secs: Some(waits),
        ..
    }) = &found
    {
        tracing::info!(user_id = %user.id, waits_secs = waits, "login refused: the account waits after failed logins");
        return Err(LoginError::Throttled {
            retry_after_secs: u64::try_from(*waits).unwrap_or(1).max(1),
        });
    }
    // Unknown users are checked against a dummy hash so that both failures
    // take the time of one argon2 verification.
    let stored = found
        .as_ref()
        .map_or_else(|| auth.dummy_hash.clone(), |a| a.password_hash.clone());
    let matches = auth.hasher.verify(body.password, stored).await?;
    let user = match (found, matches) {
        (Some(account), true) => account.user,
        (Some(account), false) => {
            let id = account.user.id;
            let failures = auth
                .db
                .run(move |conn| -> Result<i32, LoginError> {
                    Ok(conn
                        .query_one(
                            "UPDATE users SET \
                                 failed_logins = least(failed_logins + 1, 1000000), \
                                 locked_until = CASE WHEN failed_logins + 1 >= $2 \
                                     THEN now() + make_interval(secs => least($3, power(2, least(failed_logins + 1 - $2, 30)))) \
                                     ELSE locked_until END \
                             WHERE id = $1 RETURNING failed_logins",
                            &[&id, &FREE_FAILURES, &MAX_WAIT_SECS],
                        )?
                        .get(0))
                })
                .await?;
            tracing::warn!(user_id = %id, failed_logins = failures, "login failed: wrong password");
            return Err(LoginError::InvalidCredentials);
        }
        (None, _) => {
            tracing::info!("login failed: no account with this address");
            return Err(LoginError::InvalidCredentials);
        }
    };
    let state = auth.clone();
    let tokens = auth
        .db
        .run(move |conn| -> Result<tokens::Tokens, LoginError> {
            let mut tx = conn.transaction()?;
            let user_id = user.id;
            tx.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL \
                 WHERE id = $1 AND (failed_logins > 0 OR locked_until IS NOT NULL)",
                &[&user_id],
            )?;
            // Sessions that ended long ago go, a batch per login.
            tokens::prune(&mut tx)?;
            let family = tokens::start_family(&state, &mut tx, &user)?;
            let issued = tokens::issue(&state, &mut tx, user, family)?;
            let at = OffsetDateTime::now_utc();
            Event::UserLogin(UserLogin { user_id, at }).append(&mut tx)?;
            tx.commit()?;
            Ok(issued)
        })
        .await?;
    tracing::info!(user_id = %tokens.user.id, "logged in");
    Ok(json_reply(StatusCode::OK, &tokens))
}
