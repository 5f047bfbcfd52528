//! `teipsum-order`: the order service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main_consuming(teipsum_order::SERVICE, teipsum_order::build, teipsum_order::consumer).await
}
