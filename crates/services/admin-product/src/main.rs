//! `teipsum-admin-product`: the product administration service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    teipsum_kit::service::run(teipsum_admin_product::SERVICE, teipsum_admin_product::build).await
}
