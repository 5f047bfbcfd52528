//! The first administrator, from the host's shell. On a NixOS host, as root:
//!
//! ```sh
//! teipsum-promote-admin --email ops@teipsum.store
//! ```
//!
//! (nix/modules/default.nix: it runs this command as the auth unit's user,
//! with the unit's environment.) By hand, the same:
//!
//! ```sh
//! sudo -u teipsum_auth env TEIPSUM_DATABASE='host=/run/postgresql dbname=teipsum_auth user=teipsum_auth' \
//!     teipsum-auth promote-admin --email ops@teipsum.store
//! ```
//!
//! Only someone with a shell on the host, allowed to act as the service user
//! (peer authentication), can do this; there is no HTTP route for it, and
//! registration always creates a customer. The account must exist (register
//! first); new tokens carry the admin role. `teipsum dev` makes its
//! development admin with this same command.

use std::process::ExitCode;

use teipsum_conventions::env;

use crate::domain::Email;

/// Make the account of `email` an administrator.
pub async fn promote_from_cli(email: &str) -> ExitCode {
    let Ok(email) = Email::parse(email) else {
        eprintln!("error: `{email}` is not an e-mail address");
        return ExitCode::from(2);
    };
    let Ok(conninfo) = std::env::var(env::DATABASE) else {
        eprintln!(
            "error: set {} to the auth database's connection string",
            env::DATABASE
        );
        return ExitCode::from(2);
    };
    let db = match teipsum_kit::db::Db::new(&conninfo, 1, None) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = email.as_str().to_owned();
    let result = db
        .run(move |conn| -> Result<u64, teipsum_kit::db::DbError> {
            Ok(conn.execute(
                "UPDATE users SET role = 'admin' WHERE email = $1",
                &[&address],
            )?)
        })
        .await;
    let outcome = match result {
        Ok(1) => {
            println!("{email} is now an administrator (effective at its next login)");
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("error: no account for {email}; register it first");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    // The pool closes its connections synchronously.
    let _ = tokio::task::spawn_blocking(move || drop(db)).await;
    outcome
}
