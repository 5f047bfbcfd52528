//! `teipsum-admin-product`: the product administration service.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            teipsum_kit::service::run(teipsum_admin_product::SERVICE, teipsum_admin_product::build)
                .await
        }
        [events, announce] if events == "events" && announce == "announce" => {
            teipsum_kit::service::announce_command(
                &teipsum_admin_product::SERVICE,
                teipsum_admin_product::product::announce_all,
            )
            .await
        }
        _ => {
            eprintln!(
                "usage: teipsum-admin-product    run the service (settings from the environment)"
            );
            eprintln!(
                "       teipsum-admin-product {}",
                teipsum_kit::service::ANNOUNCE_USAGE
            );
            ExitCode::from(2)
        }
    }
}
