//! The committed Grafana dashboards, linted: each is the file `teipsum
//! compile` writes, its uid is unique, every panel queries a datasource the
//! environment provisions (by uid and type), panels do not overlap, and
//! every PromQL expression parses — checked by the real `promtool check
//! rules` on a rule file with one recording rule per expression. LogQL has
//! no parser here (no Loki binary on Debian): its queries are checked to
//! select the stream Vector writes.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use teipsum_spec::{Plan, load_spec};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every (environment, plan) of config.ncl.
fn plans() -> Vec<(String, Plan)> {
    let spec = load_spec(&root().join("config.ncl")).expect("config.ncl loads");
    spec.plans.into_iter().collect()
}

/// The committed dashboards of `env`, by file name.
fn committed(env: &str) -> BTreeMap<String, Value> {
    let dir = root().join("nix/generated").join(env).join("dashboards");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable entry").path();
            let text = std::fs::read_to_string(&path).expect("readable");
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            )
        })
        .collect()
}

/// `promtool check rules` on one recording rule per expression; the
/// failure text when it rejects them.
fn promtool_rejects(exprs: &[String]) -> Option<String> {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(n, expr)| serde_json::json!({ "record": format!("dashboard:expr_{n}"), "expr": expr }))
        .collect();
    let document = serde_json::json!({ "groups": [{ "name": "dashboards", "rules": rules }] });
    let dir = std::env::temp_dir().join(format!(
        "teipsum-dashboards-{}-{}",
        std::process::id(),
        exprs.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("exprs.yml");
    std::fs::write(&file, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs (scripts/setup.sh installs Debian's prometheus)");
    let _ = std::fs::remove_dir_all(&dir);
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_committed_dashboards_are_the_plans_and_nothing_else() {
    for (env, plan) in plans() {
        let grafana = plan
            .monitoring
            .as_ref()
            .and_then(|m| m.grafana.as_ref())
            .unwrap_or_else(|| panic!("{env} runs Grafana"));
        let files = committed(&env);
        let expected: BTreeSet<String> = grafana
            .dashboards
            .iter()
            .map(|d| format!("{}.json", d.uid))
            .collect();
        let present: BTreeSet<String> = files.keys().cloned().collect();
        assert_eq!(
            present, expected,
            "{env}: nix/generated/{env}/dashboards holds other files than the plan's dashboards (a stale one would still be provisioned)"
        );
        for dashboard in &grafana.dashboards {
            let text = teipsum_nixgen::dashboards::render(
                dashboard,
                &format!(
                    "{} from config.ncl; do not edit",
                    teipsum_nixgen::GENERATED_MARKER
                ),
            );
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                files[&format!("{}.json", dashboard.uid)],
                value,
                "{env}/{}: stale (run `teipsum compile`)",
                dashboard.uid
            );
        }
    }
}

#[test]
fn every_dashboard_has_a_unique_uid_and_queries_a_provisioned_datasource() {
    for (env, plan) in plans() {
        let grafana = plan.monitoring.unwrap().grafana.unwrap();
        let datasources: BTreeMap<&str, &str> = grafana
            .datasources
            .iter()
            .map(|d| (d.uid.as_str(), d.kind.as_str()))
            .collect();
        assert_eq!(
            datasources.len(),
            grafana.datasources.len(),
            "{env}: datasource uids repeat"
        );
        let mut uids = BTreeSet::new();
        for (file, dashboard) in committed(&env) {
            let uid = dashboard["uid"].as_str().expect("a uid");
            assert!(uids.insert(uid.to_owned()), "{env}: uid {uid} twice");
            assert!(
                uid.len() <= 40,
                "{env}/{file}: Grafana's uids are at most 40 characters"
            );
            let mut ids = BTreeSet::new();
            let mut cells = BTreeSet::new();
            let panels = dashboard["panels"].as_array().expect("panels");
            assert!(!panels.is_empty(), "{env}/{file}: no panel");
            for panel in panels {
                let title = panel["title"].as_str().unwrap_or("?");
                assert!(
                    ids.insert(panel["id"].as_u64().expect("an id")),
                    "{env}/{file}: panel id twice"
                );
                let source = &panel["datasource"];
                let (uid, kind) = (
                    source["uid"].as_str().unwrap(),
                    source["type"].as_str().unwrap(),
                );
                assert_eq!(
                    datasources.get(uid).copied(),
                    Some(kind),
                    "{env}/{file}/{title}: datasource {uid} ({kind}) is not provisioned"
                );
                let grid = &panel["gridPos"];
                let (x, y, w, h) = ["x", "y", "w", "h"]
                    .map(|k| grid[k].as_u64().unwrap())
                    .into();
                assert!(
                    x + w <= 24,
                    "{env}/{file}/{title}: wider than the dashboard"
                );
                for cx in x..x + w {
                    for cy in y..y + h {
                        assert!(
                            cells.insert((cx, cy)),
                            "{env}/{file}/{title}: overlaps another panel"
                        );
                    }
                }
                let targets = panel["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{env}/{file}/{title}: no query");
                for target in targets {
                    assert_eq!(
                        target["datasource"], *source,
                        "{env}/{file}/{title}: a query of another datasource"
                    );
                }
            }
        }
    }
}

#[test]
fn every_promql_expression_of_the_dashboards_parses() {
    let mut exprs = BTreeSet::new();
    for (env, _) in plans() {
        for dashboard in committed(&env).values() {
            for panel in dashboard["panels"].as_array().unwrap() {
                if panel["datasource"]["type"] != "prometheus" {
                    continue;
                }
                for target in panel["targets"].as_array().unwrap() {
                    exprs.insert(target["expr"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    assert!(exprs.len() > 20, "only {} expressions", exprs.len());
    let exprs: Vec<String> = exprs.into_iter().collect();
    if let Some(failure) = promtool_rejects(&exprs) {
        panic!("promtool rejects a dashboard expression:\n{failure}");
    }
    // The check can fail: one expression with a typo is rejected.
    let mut broken = exprs.clone();
    broken.push("sum by (service (rate(up[5m]))".to_owned());
    assert!(
        promtool_rejects(&broken).is_some(),
        "promtool accepted a broken expression"
    );
}

#[test]
fn every_logql_query_selects_the_stream_vector_writes() {
    for (env, plan) in plans() {
        let logs = plan
            .monitoring
            .unwrap()
            .logs
            .expect("config.ncl ships the journal");
        let selector = logs
            .stream
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut queries = 0;
        for dashboard in committed(&env).values() {
            for panel in dashboard["panels"].as_array().unwrap() {
                if panel["datasource"]["type"] != "loki" {
                    continue;
                }
                for target in panel["targets"].as_array().unwrap() {
                    let expr = target["expr"].as_str().unwrap();
                    assert!(
                        expr.starts_with(&format!("{{{selector}}}")),
                        "{env}: `{expr}` does not select {{{selector}}}"
                    );
                    let fields: BTreeSet<&str> =
                        logs.fields.iter().map(|f| f.name.as_str()).collect();
                    for filter in expr.split(" | ").skip(1).filter(|f| *f != "json") {
                        let name = filter.split([' ', '=', '!', '<', '>', '~']).next().unwrap();
                        assert!(
                            fields.contains(name),
                            "{env}: `{expr}` filters on `{name}`, which Vector does not ship"
                        );
                    }
                    queries += 1;
                }
            }
        }
        assert!(queries > 0, "{env}: no logs panel");
    }
}
