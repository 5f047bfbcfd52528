//! Applying auth's events to the profiles.

use postgres::Transaction;
use serde::Deserialize;
use teipsum_kit::events::{Envelope, HandleError};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Deserialize)]
struct Registered {
    user_id: Uuid,
    email: String,
    display_name: String,
}

#[derive(Deserialize)]
struct LoggedIn {
    user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// Apply one event inside the consumer's transaction.
pub fn apply(tx: &mut Transaction<'_>, _topic: &str, event: &Envelope) -> Result<(), HandleError> {
    match event.kind.as_str() {
        "user-registered" => {
            let data: Registered = serde_json::from_value(event.data.clone())?;
            tx.execute(
                "INSERT INTO profiles (id, email, display_name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&data.user_id, &data.email, &data.display_name],
            )?;
        }
        "user-login" => {
            let data: LoggedIn = serde_json::from_value(event.data.clone())?;
            tx.execute(
                "INSERT INTO logins (user_id, last_login_at, login_count) VALUES ($1, $2, 1) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                   last_login_at = greatest(logins.last_login_at, excluded.last_login_at), \
                   login_count = logins.login_count + 1",
                &[&data.user_id, &data.at],
            )?;
        }
        other => tracing::debug!(kind = other, "not for us"),
    }
    Ok(())
}
