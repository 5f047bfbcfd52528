//! The printer's output is read back by the real Nix evaluator: whatever
//! strings and attribute names go in come out unchanged.

use std::{io::Write, process::Command};

use proptest::prelude::*;
use teipsum_nixgen::nix::{self, Attrs, Nix};

/// Evaluate a Nix expression with `nix-instantiate` and return its JSON.
fn eval_json(expr: &str) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("teipsum-nix-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{:x}.nix", rand_suffix()));
    std::fs::File::create(&file)
        .unwrap()
        .write_all(expr.as_bytes())
        .unwrap();
    let output = Command::new("nix-instantiate")
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&file)
        .output()
        .expect("nix-instantiate runs (install nix-bin: scripts/setup.sh)");
    std::fs::remove_file(&file).ok();
    assert!(
        output.status.success(),
        "nix-instantiate rejected:\n{expr}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn rand_suffix() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Strings that stress both string syntaxes.
fn awkward_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a", "Z", " ", "  ", "\n", "\t", "\r", "\\", "\"", "'", "''", "'''", "$", "${", "${x}",
        "$${", "''${", "}", "{", "#", "é", "✓", "\\n", "''\\n", "-", "=", ";",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn strings_survive_a_round_trip_through_nix(strings in prop::collection::vec(awkward_string(), 1..40)) {
        let value = Nix::List(strings.iter().map(|s| Nix::Str(s.clone())).collect());
        let text = nix::to_string(&value);
        let back = eval_json(&text);
        prop_assert_eq!(back, serde_json::json!(strings), "printed as:\n{}", text);
    }

    #[test]
    fn attribute_names_survive_a_round_trip_through_nix(names in prop::collection::btree_set(awkward_string().prop_filter("non-empty", |s| !s.is_empty()), 1..20)) {
        let mut attrs = Attrs::new();
        for (i, name) in names.iter().enumerate() {
            attrs.set(name.as_str(), i as i64);
        }
        let text = format!("builtins.attrNames {}", nix::to_string(&Nix::Attrs(attrs)));
        let back = eval_json(&text);
        let mut expected: Vec<&String> = names.iter().collect();
        expected.sort();
        prop_assert_eq!(back, serde_json::json!(expected), "printed as:\n{}", text);
    }
}

#[test]
fn numbers_booleans_and_nesting_evaluate_to_what_was_built() {
    let mut inner = Attrs::new();
    inner.set("float", Nix::Float(0.9));
    inner.set("negative", Nix::Int(-3));
    inner.set(
        "list",
        Nix::List(vec![Nix::Int(-1), Nix::Bool(false), Nix::Null]),
    );
    let mut attrs = Attrs::new();
    attrs.set_path(&["a", "b", "c"], inner);
    attrs.set("dotted.key", "x");
    let back = eval_json(&nix::to_string(&Nix::Attrs(attrs)));
    assert_eq!(
        back,
        serde_json::json!({
            "a": {"b": {"c": {"float": 0.9, "negative": -3, "list": [-1, false, null]}}},
            "dotted.key": "x"
        })
    );
}
