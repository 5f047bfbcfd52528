//! `teipsum-user`: the user service.

use std::process::ExitCode;

use teipsum_kit::service::Commands;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main(
        teipsum_user::SERVICE,
        teipsum_user::build,
        Commands {
            consumer: Some(teipsum_user::consumer),
            announce: None,
        },
    )
    .await
}
