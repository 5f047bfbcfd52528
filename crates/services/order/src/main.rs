//! `teipsum-order`: the order service.

use std::process::ExitCode;

use teipsum_kit::service::Commands;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main(
        teipsum_order::SERVICE,
        teipsum_order::build,
        Commands {
            consumer: Some(teipsum_order::consumer),
            announce: None,
        },
    )
    .await
}
