//! `teipsum-auth`: the auth service, and `teipsum-auth promote-admin`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            if let Err(e) = teipsum_auth::Limits::check_env() {
                eprintln!("teipsum-auth: {e}");
                return ExitCode::from(78); // EX_CONFIG
            }
            teipsum_kit::service::run(teipsum_auth::SERVICE, teipsum_auth::build).await
        }
        [command, flag, email] if command == "promote-admin" && flag == "--email" => {
            teipsum_auth::promote_from_cli(email).await
        }
        _ => {
            eprintln!(
                "usage: teipsum-auth                                 run the service (settings from the environment)"
            );
            eprintln!(
                "       teipsum-auth promote-admin --email <address>   make an existing account an administrator"
            );
            ExitCode::from(2)
        }
    }
}
