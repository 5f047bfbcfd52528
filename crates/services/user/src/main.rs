//! `teipsum-user`: the user service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main_consuming(teipsum_user::SERVICE, teipsum_user::build, teipsum_user::consumer).await
}
