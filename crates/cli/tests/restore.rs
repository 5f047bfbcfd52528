//! `teipsum restore` refuses what it cannot restore, before it touches the
//! database or any unit, and says what is wrong. (The restore itself runs
//! against a real cluster in crates/e2e/tests/restore.rs.)

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `teipsum restore` with the prod host's plan.
fn restore(env: &str, database: &str, from: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_teipsum"))
        .args([
            "restore",
            "--env",
            env,
            "--plan",
            "nix/generated/prod/plan.json",
        ])
        .args(["--database", database, "--from"])
        .arg(from)
        .current_dir(root())
        .output()
        .expect("teipsum runs")
}

fn refusal(out: &Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teipsum-cli-restore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, contents).unwrap();
    file
}

#[test]
fn a_database_the_plan_does_not_have_is_refused_with_the_ones_it_has() {
    let (code, message) = refusal(&restore("prod", "orders", Path::new("x.sql.zstd")));
    assert_eq!(code, Some(3));
    assert_eq!(
        message,
        "error: `orders` is not a database of the plan; its databases are: teipsum_admin_product, \
         teipsum_auth, teipsum_catalog, teipsum_inventory, teipsum_order, teipsum_user"
    );
}

#[test]
fn a_plan_of_another_environment_is_refused() {
    let (code, message) = refusal(&restore("stage", "teipsum_order", Path::new("x")));
    assert_eq!(code, Some(3));
    assert_eq!(
        message,
        "error: the plan is environment `prod`, not `stage`"
    );
}

#[test]
fn a_missing_dump_is_refused() {
    let (code, message) = refusal(&restore(
        "prod",
        "teipsum_order",
        Path::new("/nonexistent/teipsum_order.sql.zstd"),
    ));
    assert_eq!(code, Some(3));
    assert_eq!(
        message,
        "error: cannot read /nonexistent/teipsum_order.sql.zstd: No such file or directory (os error 2)"
    );
}

#[test]
fn a_file_of_unknown_compression_is_refused() {
    let file = scratch("unknown.sql.zstd", b"\x00\x01not a dump");
    let (code, message) = refusal(&restore("prod", "teipsum_order", &file));
    assert_eq!(code, Some(3));
    assert!(
        message.contains("cannot tell how") && message.contains("is compressed"),
        "{message}"
    );
}

#[test]
fn a_gzip_file_that_does_not_decode_is_refused() {
    let file = scratch("broken.sql.gz", b"\x1f\x8b\x08\x00garbage");
    let (code, message) = refusal(&restore("prod", "teipsum_order", &file));
    assert_eq!(code, Some(3));
    assert!(message.contains("does not decode as gzip"), "{message}");
}

#[test]
fn a_plain_file_that_is_not_a_pg_dump_is_refused() {
    let file = scratch("notes.sql", b"-- my notes\nDROP TABLE orders;\n");
    let (code, message) = refusal(&restore("prod", "teipsum_order", &file));
    assert_eq!(code, Some(3));
    assert!(
        message.ends_with(
            "is not a dump of `teipsum_order`: its header has a statement restore does not carry over: DROP TABLE orders;"
        ),
        "{message}"
    );
}

#[test]
fn an_unreadable_plan_is_exit_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_teipsum"))
        .args([
            "restore",
            "--env",
            "prod",
            "--plan",
            "/nonexistent/plan.json",
        ])
        .args(["--database", "teipsum_order", "--from", "x"])
        .output()
        .expect("teipsum runs");
    assert_eq!(out.status.code(), Some(1));
}
