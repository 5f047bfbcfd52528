//! `teipsum-user`: the user service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => teipsum_kit::service::run(teipsum_user::SERVICE, teipsum_user::build).await,
        [command, rest @ ..] if command == "events" => {
            teipsum_kit::service::events_command(
                &teipsum_user::SERVICE,
                teipsum_user::consumer(),
                rest,
            )
            .await
        }
        _ => {
            eprintln!("usage: teipsum-user    run the service (settings from the environment)");
            for line in teipsum_kit::service::EVENTS_USAGE.lines() {
                eprintln!("       teipsum-user {line}");
            }
            ExitCode::from(2)
        }
    }
}
