//! `teipsum-admin-product`: the product administration service.

use std::process::ExitCode;

use teipsum_kit::service::Commands;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main(
        teipsum_admin_product::SERVICE,
        teipsum_admin_product::build,
        Commands {
            consumer: None,
            announce: Some(teipsum_admin_product::announce_all),
        },
    )
    .await
}
