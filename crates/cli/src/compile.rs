//! `teipsum compile`, `teipsum diff` and `teipsum render`: plans → files.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use teipsum_nixgen::{GENERATED_MARKER, GeneratedFile, diff, render, unit};
use teipsum_spec::{Plan, Spec};

use crate::{EXIT_CHANGED, EXIT_FAILED, EXIT_OK};

/// What `compile` would write, by path.
pub fn outputs(
    spec: &Spec,
    spec_file: &Path,
    out: &Path,
    env: &str,
) -> Result<BTreeMap<PathBuf, String>, String> {
    let spec_name = spec_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.ncl".to_owned());
    let plans: Vec<&Plan> = if env == "all" {
        spec.plans.values().collect()
    } else {
        vec![spec.plans.get(env).ok_or_else(|| {
            let known: Vec<&str> = spec.plans.keys().map(String::as_str).collect();
            format!(
                "no environment `{env}`; the spec declares: {} (or `all`)",
                known.join(", ")
            )
        })?]
    };
    let mut files = BTreeMap::new();
    for plan in plans {
        for GeneratedFile { name, contents } in render(plan, &spec_name) {
            files.insert(out.join(&plan.environment).join(name), contents);
        }
    }
    Ok(files)
}

/// Whether an existing file was written by the compiler.
fn is_generated(contents: &str) -> bool {
    contents
        .lines()
        .take(3)
        .any(|l| l.contains(GENERATED_MARKER))
}

/// `teipsum compile`: write (or with `check`, compare) the generated files.
pub fn compile(spec: &Spec, spec_file: &Path, out: &Path, env: &str, check: bool) -> u8 {
    let files = match outputs(spec, spec_file, out, env) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_FAILED;
        }
    };
    let mut stale = Vec::new();
    let mut foreign = Vec::new();
    for (path, contents) in &files {
        match std::fs::read_to_string(path) {
            Ok(existing) if existing == *contents => {}
            Ok(existing) if !is_generated(&existing) => foreign.push(path.clone()),
            _ => stale.push(path.clone()),
        }
    }
    if check {
        if stale.is_empty() && foreign.is_empty() {
            println!("{} generated files are up to date", files.len());
            return EXIT_OK;
        }
        for path in stale.iter().chain(&foreign) {
            eprintln!("stale: {}", path.display());
        }
        eprintln!(
            "the generated files do not match the spec: run `teipsum compile --env {env}` and commit the result"
        );
        return EXIT_CHANGED;
    }
    if !foreign.is_empty() {
        for path in &foreign {
            eprintln!(
                "error: refusing to overwrite {}: it lacks the `{GENERATED_MARKER}` header, so someone wrote it by hand",
                path.display()
            );
        }
        eprintln!("nothing was written");
        return EXIT_FAILED;
    }
    for path in &stale {
        if let Err(e) = write_atomically(path, &files[path]) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_FAILED;
        }
        println!("wrote {}", path.display());
    }
    println!("{} files, {} changed", files.len(), stale.len());
    EXIT_OK
}

/// Write through a temporary file and a rename, so a reader never sees half a file.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// `teipsum diff`: what changes between the last compiled plan and the spec.
pub fn diff(spec: &Spec, out: &Path, env: &str, from: Option<&Plan>, exit_code: bool) -> u8 {
    let Some(new) = spec.plans.get(env) else {
        let known: Vec<&str> = spec.plans.keys().map(String::as_str).collect();
        eprintln!(
            "error: no environment `{env}`; the spec declares: {}",
            known.join(", ")
        );
        return EXIT_FAILED;
    };
    let loaded;
    let old = match from {
        Some(plan) => plan,
        None => {
            let path = out.join(env).join("plan.json");
            match read_plan(&path) {
                Ok(plan) => {
                    loaded = plan;
                    &loaded
                }
                Err(e) => {
                    eprintln!(
                        "error: cannot read the deployed plan {}: {e}",
                        path.display()
                    );
                    eprintln!("(run `teipsum compile` once to create it)");
                    return EXIT_FAILED;
                }
            }
        }
    };
    let changes = diff::diff(old, new);
    print!("{}", diff::describe(&changes));
    if exit_code && !changes.is_empty() {
        EXIT_CHANGED
    } else {
        EXIT_OK
    }
}

/// A plan written by `compile` (`plan.json`).
pub fn read_plan(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    serde_json::from_value(value["plan"].clone()).map_err(|e| format!("not a plan: {e}"))
}

/// `teipsum render unit`: the unit file of a service (or `topics`).
pub fn render_unit(plan: &Plan, name: &str, bin_dir: &str) -> Result<String, String> {
    let unit = if name == "topics" {
        unit::topics_unit(plan)
    } else {
        let service = plan.service(name).ok_or_else(|| {
            let known: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
            format!(
                "no service `{name}`; the spec declares: {} (or `topics`)",
                known.join(", ")
            )
        })?;
        unit::service_unit(plan, service)
    };
    Ok(unit::to_unit_file(&unit, bin_dir))
}
