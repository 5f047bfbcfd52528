//! `teipsum-catalog`: the public product catalog.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => teipsum_kit::service::run(teipsum_catalog::SERVICE, teipsum_catalog::build).await,
        [command, rest @ ..] if command == "events" => {
            teipsum_kit::service::events_command(
                &teipsum_catalog::SERVICE,
                teipsum_catalog::consumer(),
                rest,
            )
            .await
        }
        _ => {
            eprintln!("usage: teipsum-catalog    run the service (settings from the environment)");
            for line in teipsum_kit::service::EVENTS_USAGE.lines() {
                eprintln!("       teipsum-catalog {line}");
            }
            ExitCode::from(2)
        }
    }
}
