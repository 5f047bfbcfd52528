//! The shipped `teipsum` (what nix/package.nix builds and the topics unit
//! runs on a host) links neither test infrastructure nor the service runtime.

use std::process::Command;

/// Crates that must not be in the CLI's normal dependency graph, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("teipsum-testkit", "runs initdb and spawns tansu"),
    ("teipsum-dev", "the local stack, a development tool"),
    ("warp", "the services' HTTP runtime"),
    ("hyper", "the services' HTTP runtime"),
    ("postgres", "the services' database client"),
    ("r2d2", "the services' connection pool"),
    ("refinery", "the services' migrations"),
    ("reqwest", "the tests' HTTP client"),
];

#[test]
fn the_shipped_cli_links_neither_the_testkit_nor_the_service_runtime() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "-p",
            "teipsum-cli",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo tree: {stderr}");
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"teipsum-kit"),
        "the tree is the CLI's: {tree}"
    );
    let found: Vec<String> = FORBIDDEN
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    assert!(
        found.is_empty(),
        "teipsum-cli depends on {}; `cargo tree -p teipsum-cli -e normal -i <crate>` shows why",
        found.join(", ")
    );
}
