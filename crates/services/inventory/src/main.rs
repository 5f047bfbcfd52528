//! `teipsum-inventory`: the inventory service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => teipsum_kit::service::run(teipsum_inventory::SERVICE, teipsum_inventory::build).await,
        [events, announce] if events == "events" && announce == "announce" => {
            teipsum_kit::service::announce_command(
                &teipsum_inventory::SERVICE,
                teipsum_inventory::stock::announce_all,
            )
            .await
        }
        [command, rest @ ..] if command == "events" => {
            teipsum_kit::service::events_command(
                &teipsum_inventory::SERVICE,
                teipsum_inventory::consumer(),
                rest,
            )
            .await
        }
        _ => {
            eprintln!(
                "usage: teipsum-inventory    run the service (settings from the environment)"
            );
            let usage = [
                teipsum_kit::service::EVENTS_USAGE,
                teipsum_kit::service::ANNOUNCE_USAGE,
            ];
            for line in usage.iter().flat_map(|u| u.lines()) {
                eprintln!("       teipsum-inventory {line}");
            }
            ExitCode::from(2)
        }
    }
}
