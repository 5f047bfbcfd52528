//! `teipsum-order`: the order service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => teipsum_kit::service::run(teipsum_order::SERVICE, teipsum_order::build).await,
        [command, rest @ ..] if command == "events" => {
            teipsum_kit::service::events_command(
                &teipsum_order::SERVICE,
                teipsum_order::consumer(),
                rest,
            )
            .await
        }
        _ => {
            eprintln!("usage: teipsum-order    run the service (settings from the environment)");
            for line in teipsum_kit::service::EVENTS_USAGE.lines() {
                eprintln!("       teipsum-order {line}");
            }
            ExitCode::from(2)
        }
    }
}
