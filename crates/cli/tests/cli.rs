//! The `teipsum` binary as users run it: exit codes, output, files written.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn teipsum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_teipsum"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("teipsum runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teipsum-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A spec that patches config.ncl with a Nickel merge.
fn patched(dir: &Path, patch: &str) -> PathBuf {
    let file = dir.join("patched.ncl");
    std::fs::write(
        &file,
        format!(
            "(import \"{}\") & {{ {patch} }}",
            root().join("config.ncl").display()
        ),
    )
    .unwrap();
    file
}

#[test]
fn check_accepts_config_ncl_with_a_summary() {
    let out = teipsum(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("6 services, 5 topics"), "{stdout}");
    assert!(stdout.contains("prod (teipsum.store)"), "{stdout}");
}

#[test]
fn check_rejects_an_invalid_spec_naming_the_field() {
    let file = root().join("crates/spec/tests/invalid/consumes-undeclared-topic.ncl");
    let out = teipsum(&["check", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("services.order.consumes[1]"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
}

#[test]
fn check_json_gives_one_object_per_problem() {
    let dir = tempdir("json");
    let file = patched(
        &dir,
        "services.user.port | force = 9090, services.order.port | force = 5432",
    );
    let out = teipsum(&["check", "--json", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let problems: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"services.user.port") && paths.contains(&"services.order.port"),
        "{paths:?}"
    );
    assert!(problems.iter().all(|p| p["code"] == "port-clash"));
}

#[test]
fn a_missing_spec_is_an_operational_failure() {
    let out = teipsum(&["check", "-f", "/nonexistent.ncl"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_errors_exit_2() {
    let out = teipsum(&["compile", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_prints_the_resolved_plan_as_json() {
    let out = teipsum(&["plan", "--env", "stage"]);
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["domain"], "stage.teipsum.store");
    assert_eq!(plan["acme"]["staging"], true);
    assert_eq!(teipsum(&["plan", "--env", "qa"]).status.code(), Some(3));
}

#[test]
fn explain_tells_everything_about_one_service() {
    let out = teipsum(&["explain", "order"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for needle in [
        "teipsum-order.service",
        "127.0.0.1:8100",
        "https://teipsum.store/api/orders/",
        "teipsum_order",
        "order-events → inventory",
        "inventory-events ← inventory",
        "jwt-public-key",
        "TEIPSUM_KAFKA_GROUP=teipsum-order",
    ] {
        assert!(stdout.contains(needle), "missing {needle}:\n{stdout}");
    }
    assert_eq!(teipsum(&["explain", "payments"]).status.code(), Some(3));
}

#[test]
fn graph_draws_every_service_topic_database_and_route() {
    let mermaid = text(&teipsum(&["graph"]).stdout);
    assert!(mermaid.starts_with("flowchart LR\n"));
    for needle in [
        "svc_admin_product",
        "topic_order_events",
        "db_teipsum_inventory",
        "edge -->|\"/api/orders/\"| svc_order",
        "svc_order -->|produces| topic_order_events",
        "topic_order_events -->|consumes| svc_inventory",
    ] {
        assert!(mermaid.contains(needle), "missing {needle}:\n{mermaid}");
    }
    let dot = text(&teipsum(&["graph", "--format", "dot"]).stdout);
    assert!(dot.starts_with("digraph \"teipsum prod\" {"));
    assert!(dot.contains("\"service:order\" -> \"topic:order-events\""));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn compile_writes_every_environment_and_check_sees_staleness() {
    let dir = tempdir("compile");
    let out_dir = dir.join("generated");
    let out = out_dir.to_str().unwrap();
    let first = teipsum(&["compile", "--out", out]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for env in ["prod", "stage"] {
        for name in [
            "default.nix",
            "postgresql.nix",
            "kafka.nix",
            "nginx.nix",
            "services.nix",
            "monitoring.nix",
            "alert-rules.yml",
            "dashboards/teipsum-overview.json",
            "plan.json",
        ] {
            assert!(out_dir.join(env).join(name).is_file(), "{env}/{name}");
        }
    }
    let before = std::fs::read_to_string(out_dir.join("prod/nginx.nix")).unwrap();
    let again = teipsum(&["compile", "--out", out]);
    assert!(
        text(&again.stdout).contains("28 files, 0 changed"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("prod/nginx.nix")).unwrap(),
        before
    );

    assert_eq!(
        teipsum(&["compile", "--check", "--out", out]).status.code(),
        Some(0)
    );
    std::fs::write(out_dir.join("prod/nginx.nix"), before.replace("443", "444")).unwrap();
    let stale = teipsum(&["compile", "--check", "--out", out]);
    assert_eq!(stale.status.code(), Some(4));
    assert!(text(&stale.stderr).contains("prod/nginx.nix"));
}

#[test]
fn compile_refuses_to_overwrite_a_hand_written_file_and_writes_nothing() {
    let dir = tempdir("refuse");
    let out_dir = dir.join("generated");
    std::fs::create_dir_all(out_dir.join("prod")).unwrap();
    std::fs::write(out_dir.join("prod/nginx.nix"), "{ }\n# mine\n").unwrap();
    let out = teipsum(&["compile", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("prod/nginx.nix")).unwrap(),
        "{ }\n# mine\n"
    );
    assert!(
        !out_dir.join("prod/services.nix").exists(),
        "a partial write"
    );
}

#[test]
fn an_invalid_spec_writes_nothing() {
    let dir = tempdir("invalid");
    let out_dir = dir.join("generated");
    let file = root().join("crates/spec/tests/invalid/route-shadows-another.ncl");
    let out = teipsum(&[
        "compile",
        "-f",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_dir.exists());
}

#[test]
fn the_committed_output_is_up_to_date() {
    let out = teipsum(&["compile", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn diff_explains_a_spec_change_in_plain_words() {
    let dir = tempdir("diff");
    let out_dir = dir.join("generated");
    let out = out_dir.to_str().unwrap();
    assert_eq!(teipsum(&["compile", "--out", out]).status.code(), Some(0));
    let same = teipsum(&["diff", "--out", out, "--exit-code"]);
    assert_eq!(same.status.code(), Some(0));
    assert!(text(&same.stdout).contains("no changes"));

    let file = patched(
        &dir,
        r#"services.reviews = { description = "Product reviews", port = 8120, routes = ["/api/reviews/"], database = "teipsum_reviews", produces = ["review-events"] },
           topics.review-events = { description = "Reviews.", partitions = 3, replication_factor = 1, retention = "30d" },
           topics.order-events.partitions | force = 6,
           environments.prod.log_level | force = 'debug,
           environments.prod.nginx.client_max_body_size | force = "2m",
           environments.prod.postgres.settings.shared_buffers | force = "512MB""#,
    );
    let changed = teipsum(&[
        "diff",
        "-f",
        file.to_str().unwrap(),
        "--out",
        out,
        "--exit-code",
    ]);
    assert_eq!(changed.status.code(), Some(4), "{}", text(&changed.stderr));
    let said = text(&changed.stdout);
    for needle in [
        "+ service reviews: unit teipsum-reviews.service",
        "+ database teipsum_reviews owned by role teipsum_reviews",
        "+ topic review-events (3 partitions)",
        "~ topic order-events: partitions 3 → 6",
        "+ route /api/reviews/ → reviews",
        "TEIPSUM_LOG info → debug",
        "body limit 1m → 2m",
        "shared_buffers",
        "start     teipsum-reviews.service",
        "restart   postgresql.service teipsum-admin-product.service",
        // The new unit's journal is shipped too.
        "teipsum-user.service vector.service",
        "reload    nginx.service",
        "run again postgresql-setup.service teipsum-topics.service",
    ] {
        assert!(said.contains(needle), "missing {needle:?}:\n{said}");
    }
}

#[test]
fn every_service_unit_scores_at_most_2_0_with_systemd_analyze() {
    let dir = tempdir("units");
    let plan: serde_json::Value = serde_json::from_slice(&teipsum(&["plan"]).stdout).unwrap();
    let mut names: Vec<String> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.push("topics".to_owned());
    for name in names {
        let unit = teipsum(&["render", "unit", &name]);
        assert_eq!(unit.status.code(), Some(0));
        let file = dir.join(format!("teipsum-{name}.service"));
        std::fs::write(&file, &unit.stdout).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&file)
            .output()
            .expect("systemd-analyze runs (scripts/setup.sh installs systemd)");
        let report = text(&out.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score for {name}:\n{report}\n{}", text(&out.stderr)));
        println!("{name}: exposure {score}");
        assert!(score <= 2.0, "{name} scores {score}:\n{report}");
    }
}

#[test]
fn topics_apply_creates_is_idempotent_and_never_shrinks_on_a_real_broker() {
    let broker = teipsum_testkit::Tansu::start().expect("tansu starts");
    let apply = |topics: &[&str]| {
        let mut args = vec![
            "topics",
            "apply",
            "--bootstrap",
            &broker.bootstrap,
            "--wait",
            "20",
        ];
        for t in topics {
            args.push("--topic");
            args.push(t);
        }
        let out = teipsum(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let first = apply(&["order-events:3:1:2592000000", "user-login:2:1:604800000"]);
    assert_eq!(first, "order-events: created\nuser-login: created\n");
    let again = apply(&["order-events:3:1:2592000000", "user-login:2:1:604800000"]);
    assert_eq!(again, "order-events: unchanged\nuser-login: unchanged\n");
    let shrink = apply(&["order-events:3:1:2592000000", "user-login:1:1:604800000"]);
    assert_eq!(
        shrink,
        "order-events: unchanged\nuser-login: kept its 2 partitions (partitions are never removed)\n"
    );
    // Growing needs the CreatePartitions admin call, which Apache Kafka has
    // and tansu does not: the command must say so and fail, not pretend.
    let grow = teipsum(&[
        "topics",
        "apply",
        "--bootstrap",
        &broker.bootstrap,
        "--wait",
        "20",
        "--topic",
        "order-events:6:1:2592000000",
    ]);
    assert_eq!(grow.status.code(), Some(3));
    let stderr = text(&grow.stderr);
    assert!(
        stderr.contains("order-events: cannot add partitions"),
        "{stderr}"
    );
}

#[test]
fn topics_apply_reads_the_spec_and_fails_clearly_without_a_broker() {
    let broker = teipsum_testkit::Tansu::start().expect("tansu starts");
    let out = teipsum(&[
        "topics",
        "apply",
        "--env",
        "stage",
        "--bootstrap",
        &broker.bootstrap,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for topic in [
        "inventory-events",
        "order-events",
        "product-events",
        "user-login",
        "user-registered",
    ] {
        assert!(stdout.contains(&format!("{topic}: created")), "{stdout}");
    }
    let port = teipsum_testkit::free_port().expect("a free port");
    let down = teipsum(&[
        "topics",
        "apply",
        "--bootstrap",
        &format!("127.0.0.1:{port}"),
        "--wait",
        "2",
    ]);
    assert_eq!(down.status.code(), Some(3));
    assert!(
        text(&down.stderr).contains("no broker answered"),
        "{}",
        text(&down.stderr)
    );
}

/// `teipsum keygen jwt --private P --public Q`.
fn keygen_args(private: &Path, public: &Path) -> Vec<String> {
    [
        "keygen",
        "jwt",
        "--private",
        private.to_str().unwrap(),
        "--public",
        public.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn keygen_writes_a_pair_once_and_never_replaces_the_private_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("keygen");
    let (private, public) = (dir.join("jwt.key"), dir.join("jwt.pub"));
    let args = keygen_args(&private, &public);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(teipsum(&args).status.code(), Some(0));
    let key = std::fs::read_to_string(&private).unwrap();
    let public_pem = std::fs::read_to_string(&public).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(
        teipsum_kit::jwt::public_key_of(&key).unwrap(),
        public_pem,
        "the public half belongs to the private key"
    );

    // Run again (every boot): nothing changes.
    assert_eq!(teipsum(&args).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&private).unwrap(),
        key,
        "the key was replaced"
    );
    assert_eq!(std::fs::read_to_string(&public).unwrap(), public_pem);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn keygen_derives_a_lost_or_stale_public_key_from_the_private_one() {
    let dir = tempdir("keygen-repair");
    let (private, public) = (dir.join("jwt.key"), dir.join("jwt.pub"));
    let args = keygen_args(&private, &public);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(teipsum(&args).status.code(), Some(0));
    let key = std::fs::read_to_string(&private).unwrap();
    let public_pem = std::fs::read_to_string(&public).unwrap();

    std::fs::remove_file(&public).unwrap();
    let repaired = teipsum(&args);
    assert_eq!(
        repaired.status.code(),
        Some(0),
        "{}",
        text(&repaired.stderr)
    );
    assert_eq!(std::fs::read_to_string(&public).unwrap(), public_pem);

    // A public key of another pair (restored from the wrong backup) is replaced too.
    let (_, other) = teipsum_kit::jwt::generate_keypair();
    std::fs::remove_file(&public).unwrap();
    std::fs::write(&public, other).unwrap();
    assert_eq!(teipsum(&args).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&public).unwrap(), public_pem);
    assert_eq!(std::fs::read_to_string(&private).unwrap(), key);
}

#[test]
fn keygen_refuses_a_private_key_that_is_not_one() {
    let dir = tempdir("keygen-garbage");
    let (private, public) = (dir.join("jwt.key"), dir.join("jwt.pub"));
    std::fs::write(&private, "not a key").unwrap();
    let args = keygen_args(&private, &public);
    let out = teipsum(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("jwt.key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!public.exists());
    assert_eq!(std::fs::read_to_string(&private).unwrap(), "not a key");
}
