//! Applying auth's events to the profiles.

use postgres::Transaction;
use teipsum_events::{Envelope, Event};
use teipsum_kit::events::HandleError;

/// Apply one event of [`teipsum_events::Subscription::USER`] inside the
/// consumer's transaction.
pub fn apply(tx: &mut Transaction<'_>, _: &Envelope, event: Event) -> Result<(), HandleError> {
    match event {
        Event::UserRegistered(data) => {
            tx.execute(
                "INSERT INTO profiles (id, email, display_name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&data.user_id, &data.email, &data.display_name],
            )?;
        }
        Event::UserLogin(data) => {
            tx.execute(
                "INSERT INTO logins (user_id, last_login_at, login_count) VALUES ($1, $2, 1) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                   last_login_at = greatest(logins.last_login_at, excluded.last_login_at), \
                   login_count = logins.login_count + 1",
                &[&data.user_id, &data.at],
            )?;
        }
        other => tracing::debug!(kind = %other.kind(), "not for us"),
    }
    Ok(())
}
