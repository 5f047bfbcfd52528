//! `teipsum status` as a command: the plan it reads, its exit codes and
//! its JSON. (What it reads from a running platform is tested against the
//! whole stack in crates/e2e/tests/status.rs.)

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_teipsum"))
        .arg("status")
        .args(args)
        .current_dir(root())
        .output()
        .expect("teipsum runs")
}

#[test]
fn a_plan_of_another_environment_is_refused() {
    let out = status(&["--env", "stage", "--plan", "nix/generated/prod/plan.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: the plan is environment `prod`, not `stage`"
    );
}

#[test]
fn an_unreadable_plan_is_exit_1() {
    let out = status(&["--env", "prod", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Not a prod host: nothing of the platform runs where the plan says, and
/// the status says so, section by section, with exit 5; it does not fail.
#[test]
fn off_the_host_every_section_is_reported_and_the_exit_code_is_5() {
    let out = status(&[
        "--env",
        "prod",
        "--plan",
        "nix/generated/prod/plan.json",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["environment"], "prod");
    for section in ["units", "services", "databases", "backups", "problems"] {
        assert!(
            json[section].as_array().is_some_and(|a| !a.is_empty()),
            "{section}: {json}"
        );
    }
    assert_eq!(json["services"].as_array().unwrap().len(), 6);
    assert!(
        json["certificate"]["expires_in_secs"]["error"].is_string(),
        "{json}"
    );
    let text = status(&["--env", "prod", "--plan", "nix/generated/prod/plan.json"]);
    assert_eq!(text.status.code(), Some(5));
    let text = String::from_utf8_lossy(&text.stdout);
    for heading in [
        "UNIT",
        "SERVICE",
        "DATABASE",
        "CONSUMER GROUP",
        "BACKUP",
        "PROBLEMS",
    ] {
        assert!(text.contains(heading), "{heading}: {text}");
    }
}
