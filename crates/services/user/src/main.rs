//! `teipsum-user`: the user service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::run(teipsum_user::SERVICE, teipsum_user::build).await
}
