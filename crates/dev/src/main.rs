//! `teipsum-dev`: the whole platform of an environment on this machine.
//! `teipsum dev ...` runs this program with the same arguments.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use teipsum_dev::{ADMIN_FILE, MonitoringOptions, Options, Stack, chain};
use teipsum_spec::LoadError;

/// Exit code: the spec is invalid (as `teipsum`).
const EXIT_INVALID: u8 = 1;
/// Exit code: the stack could not start (as `teipsum`).
const EXIT_FAILED: u8 = 3;

/// Run the whole platform of an environment on this machine: PostgreSQL,
/// tansu, every service (restarted when it dies, as its unit would be) and
/// nginx (HTTPS with a development certificate).
#[derive(Debug, Parser)]
#[command(name = "teipsum dev", version)]
struct Args {
    /// The platform spec.
    #[arg(long, short, default_value = "config.ncl", env = "TEIPSUM_SPEC")]
    file: PathBuf,
    /// Environment whose plan to run.
    #[arg(long, short, default_value = "prod")]
    env: String,
    /// nginx HTTPS port.
    #[arg(long, default_value_t = 8443)]
    https_port: u16,
    /// nginx plain HTTP port (redirects to HTTPS).
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// Keep the state (database, keys, certificate) here across runs.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Directory of the service binaries (default: next to teipsum-dev).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Do not print the services' logs.
    #[arg(long)]
    quiet: bool,
    /// Run the services on free ports instead of the spec's, so that
    /// this stack can run beside another one (tests, CI).
    #[arg(long)]
    free_ports: bool,
    /// Do not run Prometheus, Alertmanager and the exporters, even when
    /// they are installed and the plan monitors.
    #[arg(long)]
    no_monitoring: bool,
    /// Where Alertmanager posts the alerts (a webhook URL); without it
    /// alerts are shown in Alertmanager only.
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ExitCode::from(run(args))
}

/// Start the stack, print where it is, stop it on Ctrl-C.
fn run(args: Args) -> u8 {
    let spec = match teipsum_spec::load_spec(&args.file) {
        Ok(spec) => spec,
        Err(LoadError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("error[{}]: {d}", d.violation.code());
            }
            eprintln!(
                "{}: the spec is invalid; `teipsum check` shows the full report",
                args.file.display()
            );
            return EXIT_INVALID;
        }
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return EXIT_FAILED;
        }
    };
    let Some(plan) = spec.plans.get(&args.env).cloned() else {
        let known: Vec<&str> = spec.plans.keys().map(String::as_str).collect();
        eprintln!(
            "error: no environment `{}`; the spec declares: {}",
            args.env,
            known.join(", ")
        );
        return EXIT_FAILED;
    };
    // The storefront sits next to the spec, where the plan says.
    let base = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let options = Options {
        http_port: args.http_port,
        https_port: args.https_port,
        state_dir: args.state_dir,
        bin_dir: args.bin_dir,
        frontend: base.join(&plan.frontend.root),
        api_document: base.join(&plan.nginx.api_document.file),
        show_logs: !args.quiet,
        free_ports: args.free_ports,
        extra_routes: vec![],
        monitoring: MonitoringOptions {
            disable: args.no_monitoring,
            webhook: args.alert_webhook,
            ..MonitoringOptions::default()
        },
    };
    teipsum_kit::telemetry::init("warn");
    let stack = match Stack::start(&plan, &options) {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return EXIT_FAILED;
        }
    };
    println!();
    println!("TeIpsum ({} plan) is running:", args.env);
    println!("  storefront   {}/", stack.https_base);
    for route in &plan.nginx.routes {
        println!(
            "  {:<12} {}{}",
            route.service, stack.https_base, route.prefix
        );
    }
    println!(
        "  certificate  {}/tls/ca.pem (the development CA to trust)",
        stack.state_dir.display()
    );
    println!(
        "  PostgreSQL   psql -h {} -U postgres postgres",
        stack.postgres.socket_dir.display()
    );
    println!("  broker       {}", stack.bootstrap);
    if let Some(monitoring) = &stack.monitoring {
        println!("  Prometheus   {}/alerts", monitoring.prometheus_url);
        println!("  Alertmanager {}/", monitoring.alertmanager_url);
    }
    if let Some(admin) = &stack.admin {
        println!(
            "  admin        {} / {} (registered, then promoted with teipsum-auth promote-admin; also in {}/{ADMIN_FILE})",
            admin.email,
            admin.password,
            stack.state_dir.display(),
        );
    }
    println!(
        "  status       teipsum status --dev {}",
        stack.state_dir.display()
    );
    println!("Press Ctrl-C to stop.");
    let stopped = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| runtime.block_on(teipsum_kit::process::shutdown_signal()));
    if let Err(e) = stopped {
        eprintln!("error: no runtime to wait for Ctrl-C: {e}");
    }
    eprintln!("teipsum dev: stopping");
    stack.stop();
    0
}
