//! `teipsum-catalog`: the public product catalog.

use std::process::ExitCode;

use teipsum_kit::service::Commands;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main(
        teipsum_catalog::SERVICE,
        teipsum_catalog::build,
        Commands {
            consumer: Some(teipsum_catalog::consumer),
            announce: None,
        },
    )
    .await
}
