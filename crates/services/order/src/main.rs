//! `teipsum-order`: the order service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::run(teipsum_order::SERVICE, teipsum_order::build).await
}
