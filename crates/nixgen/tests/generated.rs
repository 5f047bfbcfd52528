//! The generated NixOS modules of `config.ncl` (ZooKeeper) and of a KRaft
//! variant: the committed output, syntax, determinism, hygiene and option
//! names.
//!
//! Each expected output is stored once. `config.ncl`'s is `nix/generated`
//! itself, the files `teipsum compile --check` guards (refresh them with
//! `cargo run -p teipsum-cli -- compile`). The KRaft variant differs from it
//! only in `kafka.nix` and the plan's Kafka section and listeners, so only
//! its `kafka.nix`
//! is stored, as an insta snapshot (`INSTA_UPDATE=always` or
//! `cargo insta review` after reading the diff).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use rnix::ast::{self, HasEntry};
use teipsum_nixgen::{GeneratedFile, render};
use teipsum_spec::load_spec;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (variant, environment, files) for every spec the tests cover.
fn all_outputs() -> Vec<(&'static str, String, Vec<GeneratedFile>)> {
    let specs = [
        ("zookeeper", root().join("config.ncl")),
        (
            "kraft",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kraft.ncl"),
        ),
    ];
    let mut out = Vec::new();
    for (variant, file) in specs {
        let spec = load_spec(&file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        for (env, plan) in &spec.plans {
            out.push((variant, env.clone(), render(plan, "config.ncl")));
        }
    }
    out
}

/// The first line where `a` and `b` differ, for a failure message that
/// fits on a screen.
fn first_difference(a: &str, b: &str) -> String {
    let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
    for n in 1.. {
        match (a_lines.next(), b_lines.next()) {
            (None, None) => break,
            (x, y) if x == y => {}
            (x, y) => {
                return format!(
                    "line {n}: {:?} vs {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
        }
    }
    "only in line endings".to_owned()
}

#[test]
fn config_ncl_renders_exactly_the_committed_nix_generated() {
    for (variant, env, files) in all_outputs() {
        if variant != "zookeeper" {
            continue;
        }
        for file in files {
            let path = root().join("nix/generated").join(&env).join(file.name);
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == file.contents,
                "{} is not what config.ncl renders ({}); run `cargo run -p teipsum-cli -- compile`, \
                 review the diff and commit it",
                path.display(),
                first_difference(&committed, &file.contents)
            );
        }
    }
}

#[test]
fn the_kraft_variant_differs_from_config_ncl_only_in_its_kafka_and_monitoring_modules() {
    let outputs = all_outputs();
    let zookeeper = |env: &str, name: &str| {
        outputs
            .iter()
            .find(|(v, e, _)| *v == "zookeeper" && e == env)
            .and_then(|(_, _, files)| files.iter().find(|f| f.name == name))
            .unwrap_or_else(|| panic!("config.ncl renders no {env}/{name}"))
    };
    let config = load_spec(&root().join("config.ncl")).unwrap();
    let kraft =
        load_spec(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kraft.ncl")).unwrap();
    for (env, plan) in &kraft.plans {
        // The plans differ in their Kafka section and the ports it listens
        // on, the units whose journal is shipped (no ZooKeeper), and stage
        // in how Alertmanager delivers (e-mail).
        let mut same_kafka = plan.clone();
        same_kafka.kafka = config.plans[env].kafka.clone();
        same_kafka.listeners = config.plans[env].listeners.clone();
        if let (Some(kraft), Some(zookeeper)) =
            (&mut same_kafka.monitoring, &config.plans[env].monitoring)
        {
            kraft.alertmanager = zookeeper.alertmanager.clone();
            kraft.logs = zookeeper.logs.clone();
        }
        assert!(
            same_kafka == config.plans[env],
            "{env}: beyond Kafka, the journal's units and alert delivery"
        );
        for file in render(plan, "config.ncl") {
            match file.name.as_str() {
                "kafka.nix" => {
                    insta::assert_snapshot!(format!("kraft-{env}-kafka.nix"), file.contents)
                }
                "monitoring.nix" => {
                    insta::assert_snapshot!(format!("kraft-{env}-monitoring.nix"), file.contents)
                }
                "plan.json" => {}
                name => assert!(
                    file.contents == zookeeper(env, name).contents,
                    "kraft {env}/{name} differs from config.ncl's: {}",
                    first_difference(&zookeeper(env, name).contents, &file.contents)
                ),
            }
        }
    }
}

#[test]
fn every_generated_nix_file_parses() {
    for (variant, env, files) in all_outputs() {
        for file in files.iter().filter(|f| f.name.ends_with(".nix")) {
            let parsed = rnix::Root::parse(&file.contents);
            assert!(
                parsed.errors().is_empty(),
                "{variant}/{env}/{}: {:?}",
                file.name,
                parsed.errors()
            );
        }
    }
}

#[test]
fn the_hand_written_nix_files_parse() {
    let mut files = vec![root().join("flake.nix")];
    collect_nix(&root().join("nix"), &mut files);
    assert!(files.len() > 3, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = rnix::Root::parse(&text);
        assert!(
            parsed.errors().is_empty(),
            "{}: {:?}",
            path.display(),
            parsed.errors()
        );
    }
}

fn collect_nix(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_nix(&path, out);
        } else if path.extension().is_some_and(|e| e == "nix") {
            out.push(path);
        }
    }
}

#[test]
fn compiling_twice_gives_identical_bytes() {
    let a = all_outputs();
    let b = all_outputs();
    assert_eq!(a.len(), b.len());
    for ((_, _, x), (_, _, y)) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}

#[test]
fn no_machine_paths_store_paths_or_secret_values_leak_into_the_output() {
    let here = root().canonicalize().unwrap();
    for (variant, env, files) in all_outputs() {
        for file in files {
            let text = &file.contents;
            let at = format!("{variant}/{env}/{}", file.name);
            assert!(!text.contains("/nix/store"), "{at}: a store path");
            assert!(
                !text.contains(here.to_str().unwrap()),
                "{at}: the checkout's path"
            );
            for machine in ["/home/", "/root/", "/tmp/", "/work/"] {
                assert!(!text.contains(machine), "{at}: a machine path {machine}");
            }
            // A password may only be a reference to a file (Grafana's `$__file{}`).
            let text_without_file_references = text.replace("password = \"$__file{", "");
            for secret in ["BEGIN", "PRIVATE KEY", "password =", "PASSWORD"] {
                assert!(
                    !text_without_file_references.contains(secret),
                    "{at}: looks like a secret ({secret})"
                );
            }
            assert!(
                text.contains(teipsum_nixgen::GENERATED_MARKER),
                "{at}: no header"
            );
        }
    }
}

#[test]
fn secrets_reach_units_only_as_credential_files() {
    for (_, _, files) in all_outputs() {
        let services = files.iter().find(|f| f.name == "services.nix").unwrap();
        for line in services
            .contents
            .lines()
            .filter(|l| l.contains("/secrets/"))
        {
            let line = line.trim();
            assert!(
                line.starts_with("\"jwt-") && line.contains(":/var/lib/teipsum/secrets/")
                    || line.starts_with("LoadCredential = [ \""),
                "a secret path outside LoadCredential: {line}"
            );
        }
        assert!(
            !services.contents.contains("TEIPSUM_JWT_SIGNING"),
            "a key in the environment"
        );
    }
}

/// Option paths a module file sets, with `*` for names under attrsOf
/// options and `[]` for list elements.
fn option_paths(text: &str) -> BTreeSet<String> {
    let root = rnix::Root::parse(text).tree();
    let mut expr = root.expr().expect("an expression");
    if let ast::Expr::Lambda(lambda) = &expr {
        expr = lambda.body().expect("a body");
    }
    let mut out = BTreeSet::new();
    walk(&expr, &mut Vec::new(), &mut out);
    out
}

/// Attribute sets whose names are user data (attrsOf / freeform options).
const NAMED: [&str; 12] = [
    "systemd.services",
    "users.users",
    "users.groups",
    "services.nginx.virtualHosts",
    "services.nginx.virtualHosts.*.locations",
    "services.nginx.upstreams",
    "services.nginx.upstreams.*.servers",
    "services.postgresql.settings",
    "services.apache-kafka.settings",
    "systemd.services.*.environment",
    "systemd.services.*.serviceConfig",
    "security.acme.certs",
];

fn attr_name(attr: &ast::Attr) -> String {
    match attr {
        ast::Attr::Ident(i) => i.to_string(),
        ast::Attr::Str(s) => s
            .normalized_parts()
            .into_iter()
            .map(|p| match p {
                ast::InterpolPart::Literal(l) => l,
                ast::InterpolPart::Interpolation(_) => "${...}".to_owned(),
            })
            .collect(),
        ast::Attr::Dynamic(_) => "${...}".to_owned(),
    }
}

fn walk(expr: &ast::Expr, path: &mut Vec<String>, out: &mut BTreeSet<String>) {
    match expr {
        ast::Expr::AttrSet(set) => {
            let entries: Vec<_> = set.attrpath_values().collect();
            if entries.is_empty() {
                out.insert(path.join("."));
            }
            for entry in entries {
                let depth = path.len();
                for attr in entry.attrpath().unwrap().attrs() {
                    let joined = path.join(".");
                    let name = if NAMED.iter().any(|n| matches(n, &joined)) {
                        "*".to_owned()
                    } else {
                        attr_name(&attr)
                    };
                    path.push(name);
                }
                walk(&entry.value().unwrap(), path, out);
                path.truncate(depth);
            }
        }
        ast::Expr::List(list) => {
            let items: Vec<_> = list.items().collect();
            if items.iter().any(|i| matches!(i, ast::Expr::AttrSet(_))) {
                for item in items {
                    path.push("[]".to_owned());
                    walk(&item, path, out);
                    path.pop();
                }
            } else {
                out.insert(path.join("."));
            }
        }
        _ => {
            out.insert(path.join("."));
        }
    }
}

/// Whether `path` matches `pattern` segment by segment (`*` matches one segment).
fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let q: Vec<&str> = path.split('.').collect();
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" || a == b)
}

fn allowlist() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("nix/option-allowlist.txt")).unwrap();
    text.lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_emitted_option_path_is_in_the_nixos_26_05_allowlist() {
    let allowed = allowlist();
    let mut unknown = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (variant, env, files) in all_outputs() {
        for file in files
            .iter()
            .filter(|f| f.name.ends_with(".nix") && f.name != "default.nix")
        {
            for path in option_paths(&file.contents) {
                match allowed.iter().find(|a| matches(a, &path)) {
                    Some(a) => {
                        used.insert(a.clone());
                    }
                    None => {
                        unknown.insert(format!("{path}  ({variant}/{env}/{})", file.name));
                    }
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "option paths not in nix/option-allowlist.txt:\n{}",
        unknown.into_iter().collect::<Vec<_>>().join("\n")
    );
    let unused: Vec<&String> = allowed.iter().filter(|a| !used.contains(*a)).collect();
    assert!(
        unused.is_empty(),
        "allow-list entries no generated file uses (remove them): {unused:?}"
    );
}

#[test]
fn the_option_walker_sees_typos() {
    let paths = option_paths(
        "{ config, ... }: { services.nginx.virtualHosts.\"x\".locations.\"/\".proxyPas = \"a\"; }",
    );
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        ["services.nginx.virtualHosts.*.locations.*.proxyPas"]
    );
    assert!(
        !allowlist()
            .iter()
            .any(|a| matches(a, "services.nginx.virtualHosts.*.locations.*.proxyPas"))
    );
}

#[test]
fn every_service_unit_has_the_memory_and_task_limits_of_its_plan() {
    let spec = load_spec(&root().join("config.ncl")).unwrap();
    let mut plan = spec.plans["prod"].clone();
    plan.services[0].memory_max = "2G".to_owned();
    plan.services[0].tasks_max = 300;
    let files = render(&plan, "config.ncl");
    let services = &files
        .iter()
        .find(|f| f.name == "services.nix")
        .unwrap()
        .contents;
    for service in &plan.services {
        let unit = service.unit.trim_end_matches(".service");
        let start = services
            .find(&format!("systemd.services.{unit} ="))
            .or_else(|| services.find(&format!("{unit} = {{")))
            .unwrap_or_else(|| panic!("no unit {unit}"));
        let block = &services[start..];
        let block = &block[..block.find("wantedBy").unwrap_or(block.len())];
        assert!(
            block.contains(&format!("MemoryMax = \"{}\";", service.memory_max)),
            "{unit}: MemoryMax={}",
            service.memory_max
        );
        assert!(
            block.contains(&format!("TasksMax = \"{}\";", service.tasks_max)),
            "{unit}: TasksMax={}",
            service.tasks_max
        );
    }
}
