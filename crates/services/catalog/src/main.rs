//! `teipsum-catalog`: the public product catalog.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::main_consuming(teipsum_catalog::SERVICE, teipsum_catalog::build, teipsum_catalog::consumer).await
}
