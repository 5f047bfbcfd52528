//! A corpus of awkward valid specs and their committed output.
//!
//! Each case is a directory `tests/valid/<case>/` holding `spec.ncl` and, in
//! `expected/<env>/`, exactly the files `teipsum compile` would write into
//! `nix/generated/<env>/` for it: the NixOS modules and the plan JSON. The
//! test compiles every case again and compares byte for byte; every generated
//! Nix file must also parse, with `rnix` and with `nix-instantiate --parse`.
//!
//! After a deliberate change, refresh the committed output and read its diff:
//!
//! ```text
//! TEIPSUM_REFRESH=1 cargo nextest run -p teipsum-nixgen --test valid_specs
//! git diff crates/nixgen/tests/valid
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use teipsum_nixgen::render;
use teipsum_spec::load_spec;

/// Set to refresh the committed output instead of comparing with it.
const REFRESH: &str = "TEIPSUM_REFRESH";

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/valid exists")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.join("spec.ncl").is_file())
        .collect();
    cases.sort();
    cases
}

/// `<env>/<file>` → contents, as compiled now.
fn compile(case: &Path) -> BTreeMap<String, String> {
    let spec = load_spec(&case.join("spec.ncl"))
        .unwrap_or_else(|e| panic!("{}: the spec is not valid: {e:?}", case.display()));
    let mut out = BTreeMap::new();
    for (env, plan) in &spec.plans {
        for file in render(plan, "spec.ncl") {
            out.insert(format!("{env}/{}", file.name), file.contents);
        }
    }
    out
}

/// `<env>/<file>` (or `<env>/dashboards/<file>`) → contents, as committed.
fn committed(case: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let expected = case.join("expected");
    let Ok(envs) = std::fs::read_dir(&expected) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = envs.map(|e| e.expect("a readable entry").path()).collect();
    while let Some(dir) = dirs.pop() {
        for file in std::fs::read_dir(&dir).expect("a readable directory") {
            let file = file.expect("a readable entry").path();
            if file.is_dir() {
                // `dashboards/`.
                dirs.push(file);
                continue;
            }
            let key = file
                .strip_prefix(&expected)
                .expect("under expected/")
                .to_string_lossy()
                .into_owned();
            out.insert(key, std::fs::read_to_string(&file).expect("readable"));
        }
    }
    out
}

fn refresh(case: &Path, files: &BTreeMap<String, String>) {
    let expected = case.join("expected");
    if expected.exists() {
        std::fs::remove_dir_all(&expected).expect("expected/ can be removed");
    }
    for (name, contents) in files {
        let path = expected.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("writable");
        std::fs::write(&path, contents).expect("writable");
    }
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "they differ only in line endings".to_owned(),
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "line {line}:\n  committed: {}\n  compiled:  {}",
                    x.unwrap_or("(end of file)"),
                    y.unwrap_or("(end of file)")
                );
            }
        }
    }
    unreachable!("the loop returns")
}

#[test]
fn the_corpus_covers_the_awkward_cases() {
    let names: Vec<String> = cases()
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 4, "{names:?}");
}

#[test]
fn every_valid_spec_compiles_to_its_committed_output() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let compiled = compile(&case);
        if std::env::var_os(REFRESH).is_some() {
            refresh(&case, &compiled);
            continue;
        }
        let committed = committed(&case);
        for (file, contents) in &compiled {
            match committed.get(file) {
                None => failures.push(format!("{name}/expected/{file}: not committed")),
                Some(expected) if expected != contents => failures.push(format!(
                    "{name}/expected/{file}: {}",
                    first_difference(expected, contents)
                )),
                Some(_) => {}
            }
        }
        for file in committed.keys().filter(|f| !compiled.contains_key(*f)) {
            failures.push(format!("{name}/expected/{file}: no longer generated"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: {REFRESH}=1 cargo nextest run -p teipsum-nixgen --test valid_specs, then read `git diff crates/nixgen/tests/valid`",
        failures.join("\n")
    );
}

#[test]
fn every_generated_nix_file_of_the_corpus_parses() {
    let nix_instantiate = Command::new("nix-instantiate").arg("--version").output();
    let have_nix = nix_instantiate.is_ok_and(|o| o.status.success());
    if !have_nix {
        eprintln!("nix-instantiate is not installed: checking with rnix only");
    }
    let scratch = std::env::temp_dir().join(format!("teipsum-valid-specs-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        for (file, contents) in compile(&case).iter().filter(|(f, _)| f.ends_with(".nix")) {
            let parsed = rnix::Root::parse(contents);
            assert!(
                parsed.errors().is_empty(),
                "{name}/{file}: {:?}",
                parsed.errors()
            );
            if have_nix {
                let path = scratch.join(file.replace('/', "-"));
                std::fs::write(&path, contents).unwrap();
                let output = Command::new("nix-instantiate")
                    .arg("--parse")
                    .arg(&path)
                    .output()
                    .expect("nix-instantiate runs");
                assert!(
                    output.status.success(),
                    "{name}/{file}: nix-instantiate --parse failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
}
