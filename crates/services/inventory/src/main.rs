//! `teipsum-inventory`: the inventory service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::run(teipsum_inventory::SERVICE, teipsum_inventory::build).await
}
