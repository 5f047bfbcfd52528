//! The corpus of invalid specs: every file in `tests/invalid/` must be
//! rejected with a diagnostic at the field path and of the rule its
//! `# expect: <path> <code>` line names, and nothing else may be accepted.
//!
//! Next to each `<case>.ncl`, `<case>.snap` holds the full text `teipsum
//! check` prints for it (without colour): every message, hint and Nickel
//! report a user reads. Review changes with `cargo insta review` (or
//! `INSTA_UPDATE=always`, then `git diff crates/spec/tests/invalid`).

use std::path::{Path, PathBuf};

use teipsum_spec::{LoadError, Severity, load_spec, render};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the corpus directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ncl"))
        .collect();
    files.sort();
    files
}

/// `# expect: services.order.port contract` → (`services.order.port`, `contract`).
fn expectation(file: &Path) -> (String, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
    let (path, code) = line.rsplit_once(' ').expect("`<path> <code>`");
    (path.to_owned(), code.to_owned())
}

#[test]
fn the_corpus_has_at_least_25_invalid_specs() {
    assert!(corpus().len() >= 25, "only {} specs", corpus().len());
}

#[test]
fn every_invalid_spec_is_rejected_naming_its_field_and_rule() {
    let mut failures = Vec::new();
    for file in corpus() {
        let (path, code) = expectation(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        match load_spec(&file) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(LoadError::Io { .. }) => failures.push(format!("{name}: I/O error")),
            Err(LoadError::Invalid(diagnostics)) => {
                let found = diagnostics
                    .iter()
                    .any(|d| d.path.to_string() == path && d.violation.code() == code);
                if !found {
                    let got: Vec<String> = diagnostics
                        .iter()
                        .map(|d| format!("{} [{}] {}", d.path, d.violation.code(), d.violation))
                        .collect();
                    failures.push(format!("{name}: expected {path} [{code}], got {got:#?}"));
                }
                for d in &diagnostics {
                    assert!(
                        !d.violation.to_string().is_empty(),
                        "{name}: a diagnostic without a message"
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What `teipsum check crates/spec/tests/invalid/<case>.ncl` prints, run from
/// the repository root, with this checkout's absolute path taken out.
fn check_output(file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shown = Path::new("crates/spec/tests/invalid").join(file.file_name().unwrap());
    let text = match load_spec(file) {
        Ok(_) => "accepted".to_owned(),
        Err(LoadError::Io { .. }) => "I/O error".to_owned(),
        Err(LoadError::Invalid(diagnostics)) => render(&shown, &diagnostics, Severity::Error),
    };
    let mut text = text;
    for prefix in [std::fs::canonicalize(&root).unwrap(), root] {
        text = text.replace(&format!("{}/", prefix.display()), "");
    }
    without_underline_widths(&without_addresses(&text))
}

/// Nickel underlines an `import "<path>"` to the path's width, which depends
/// on where the clone is: keep three dashes.
fn without_underline_widths(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("--- imported here") {
            Some(end) => {
                let start = line[..end].trim_end_matches('-').len();
                format!("{}--- imported here{}", &line[..start], &line[end + 17..])
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// `%<closure@0x7f9dd5041ec8>` → `%<closure@0x…>`: Nickel prints where a
/// closure happens to live in memory, which differs from run to run.
fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("@0x") {
        out.push_str(&rest[..i + 3]);
        rest = rest[i + 3..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
        out.push('…');
    }
    out.push_str(rest);
    out
}

#[test]
fn every_invalid_spec_reads_as_reviewed() {
    for file in corpus() {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let what = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ");
        insta::with_settings!({
            snapshot_path => "invalid",
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => what,
        }, {
            insta::assert_snapshot!(name, check_output(&file));
        });
    }
}

#[test]
fn nickel_errors_point_at_the_offending_line() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/port-as-string.ncl");
    let Err(LoadError::Invalid(diagnostics)) = load_spec(&file) else {
        panic!("accepted");
    };
    let location = diagnostics[0].location.as_ref().expect("a location");
    assert!(location.file.ends_with("port-as-string.ncl"), "{location}");
    assert_eq!(location.line, 4);
    assert!(diagnostics[0].report.as_ref().unwrap().contains("\"8100\""));
}

#[test]
fn several_mistakes_are_all_reported_at_once() {
    let dir = tempdir();
    let spec = dir.join("many.ncl");
    std::fs::write(
        &spec,
        format!(
            "(import \"{}\") & {{ services.user.port | force = \"x\", topics.user-login.retention | force = \"soon\", services.order.prot = 1 }}",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl").display()
        ),
    )
    .unwrap();
    let Err(LoadError::Invalid(diagnostics)) = load_spec(&spec) else {
        panic!("accepted");
    };
    let mut paths: Vec<String> = diagnostics.iter().map(|d| d.path.to_string()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "services.order.prot",
            // Its default is `port` + 10000, which cannot be computed either.
            "services.user.metrics_port",
            "services.user.port",
            "topics.user-login.retention"
        ]
    );
}

#[test]
fn a_missing_file_is_an_io_error_not_a_spec_error() {
    assert!(matches!(
        load_spec(Path::new("/nonexistent/config.ncl")),
        Err(LoadError::Io { .. })
    ));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teipsum-spec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
