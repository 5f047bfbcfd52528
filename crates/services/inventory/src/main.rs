//! `teipsum-inventory`: the inventory service.

use std::process::ExitCode;

use teipsum_kit::service::Commands;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main(
        teipsum_inventory::SERVICE,
        teipsum_inventory::build,
        Commands {
            consumer: Some(teipsum_inventory::consumer),
            announce: Some(teipsum_inventory::announce_all),
        },
    )
    .await
}
