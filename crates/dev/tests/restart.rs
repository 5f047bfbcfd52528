//! `teipsum dev` restarts a service that dies, as the unit's
//! `Restart=on-failure` does on a host, and leaves one stopped on purpose alone.
//!
//! Needs the service binaries built next to this test (`cargo build --workspace`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use teipsum_dev::{Options, Signal, Stack, restart_policy};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start() -> Stack {
    let spec = teipsum_spec::load_spec(&root().join("config.ncl")).expect("config.ncl is valid");
    let plan = spec.plans["prod"].clone();
    let bin_dir = teipsum_testkit::binary("teipsum-catalog")
        .expect("the services are built (cargo build --workspace)")
        .parent()
        .map(Path::to_owned)
        .expect("a target directory");
    let edge = teipsum_testkit::free_ports(2, &[]).expect("two free ports");
    let options = Options {
        http_port: edge[0],
        https_port: edge[1],
        state_dir: None,
        bin_dir: Some(bin_dir),
        frontend: root().join(&plan.frontend.root),
        api_document: root().join(&plan.nginx.api_document.file),
        show_logs: std::env::var_os("E2E_LOGS").is_some(),
        free_ports: true,
        extra_routes: vec![],
        monitoring: teipsum_dev::MonitoringOptions {
            disable: true,
            ..Default::default()
        },
    };
    Stack::start(&plan, &options)
        .unwrap_or_else(|e| panic!("the stack does not start: {}", teipsum_dev::chain(&e)))
}

/// An HTTPS client that trusts the stack's development CA.
fn client(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("the CA is usable");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTPS client")
}

/// Poll `done` every 100 ms until it holds; fail with `what` after `bound`.
fn within(bound: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "{what} within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn a_service_killed_with_sigkill_is_started_again_and_one_stopped_on_purpose_is_not() {
    let stack = start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let https = client(&stack.ca_pem);
    let catalog = stack.plan.service("catalog").expect("a catalog service");
    let delay = restart_policy(catalog).delay;
    let port = catalog.port;
    // A new query each time: nginx's micro-cache must not answer for catalog.
    let mut n = 0;
    let mut through_nginx = || {
        n += 1;
        let url = format!("{}/api/products?limit={n}", stack.https_base);
        runtime
            .block_on(async { https.get(&url).send().await })
            .map(|r| r.status().as_u16())
            .ok()
    };
    assert_eq!(through_nginx(), Some(200), "catalog answers through nginx");

    // A crash: SIGKILL, not reaped by us; the supervisor notices it.
    let old = stack.service("catalog").pid().expect("catalog runs");
    stack
        .service("catalog")
        .signal(Signal::Kill)
        .expect("SIGKILL is sent");
    let back = within(
        delay + Duration::from_secs(30),
        "catalog is restarted and ready again",
        || {
            let pid = stack.service("catalog").pid();
            pid.is_some_and(|pid| pid != old)
                && teipsum_testkit::http_status(port, "/readyz") == Some(200)
        },
    );
    assert!(
        back >= delay,
        "restarted after {back:?}, before the restart delay of {delay:?}"
    );
    within(
        Duration::from_secs(10),
        "catalog answers through nginx again",
        || through_nginx() == Some(200),
    );

    // An intentional stop stays a stop.
    assert!(
        stack.service("catalog").stop(),
        "catalog drains and exits 0"
    );
    std::thread::sleep(delay + Duration::from_secs(2));
    assert!(
        !stack.service("catalog").is_running(),
        "a service stopped on purpose is not restarted"
    );
    stack
        .service("catalog")
        .start()
        .expect("catalog starts again by hand");
    assert_eq!(through_nginx(), Some(200));
    stack.stop();
}
