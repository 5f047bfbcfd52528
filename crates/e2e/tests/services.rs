//! A service's name is written twice: as its key in `config.ncl` and as
//! `SERVICE.name` in its crate (a `teipsum-events` constant). Everything
//! else follows from the name — the binary the unit runs, the migrations
//! folder, the credentials — and this ties each of them, for every service
//! and every environment, so that a rename in one place fails here, not at a
//! deploy.

use std::{collections::BTreeSet, path::Path, process::Command};

use teipsum_conventions::credentials as credential;
use teipsum_kit::Service;
use teipsum_spec::plan::Plan;

/// Every service crate of the workspace, by its `SERVICE`.
const SERVICES: [Service; 6] = [
    teipsum_admin_product::SERVICE,
    teipsum_auth::SERVICE,
    teipsum_catalog::SERVICE,
    teipsum_inventory::SERVICE,
    teipsum_order::SERVICE,
    teipsum_user::SERVICE,
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn plans() -> Vec<(String, Plan)> {
    let spec = teipsum_spec::load_spec(&root().join("config.ncl")).expect("config.ncl is valid");
    assert!(!spec.plans.is_empty(), "config.ncl has environments");
    spec.plans.into_iter().collect()
}

fn code_names() -> BTreeSet<&'static str> {
    SERVICES.iter().map(|s| s.name).collect()
}

#[test]
fn the_services_of_the_spec_are_the_services_of_the_code() {
    assert_eq!(
        code_names().len(),
        SERVICES.len(),
        "two crates share a name"
    );
    for (env, plan) in plans() {
        let spec: BTreeSet<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            spec,
            code_names(),
            "{env}: config.ncl's services against the crates' SERVICE.name"
        );
    }
}

#[test]
fn the_binary_each_unit_runs_is_built_by_the_services_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // binary → the library target of the same package.
    let mut built_by = std::collections::BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let targets = package["targets"].as_array().expect("targets");
        let has = |kind: &'static str| {
            targets
                .iter()
                .filter(move |t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == kind))
                })
                .filter_map(|t| t["name"].as_str())
        };
        let library = has("lib").next().map(|l| l.replace('-', "_"));
        for binary in has("bin") {
            built_by.insert(binary.to_owned(), library.clone());
        }
    }
    for (env, plan) in plans() {
        for service in &plan.services {
            let library = built_by.get(&service.binary).unwrap_or_else(|| {
                panic!(
                    "{env}: the unit of {} runs {}, which no crate of the workspace builds",
                    service.name, service.binary
                )
            });
            let expected = format!("teipsum_{}", service.name.replace('-', "_"));
            assert_eq!(
                library.as_deref(),
                Some(expected.as_str()),
                "{env}: {} is built by the crate of service {}",
                service.binary,
                service.name
            );
        }
    }
}

#[test]
fn each_service_embeds_exactly_its_own_migrations_folder() {
    let folders: BTreeSet<String> = std::fs::read_dir(root().join("migrations"))
        .expect("migrations/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let names: BTreeSet<String> = code_names().into_iter().map(str::to_owned).collect();
    assert_eq!(
        folders, names,
        "one migrations folder per service, named after it"
    );
    for service in SERVICES {
        let embedded: BTreeSet<String> = (service.migrations)()
            .get_migrations()
            .iter()
            .map(|m| format!("{m}.sql"))
            .collect();
        let files: BTreeSet<String> =
            std::fs::read_dir(root().join("migrations").join(service.name))
                .expect("the service's folder")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
        assert_eq!(
            embedded, files,
            "{} embeds migrations/{}/ and nothing else",
            service.name, service.name
        );
    }
}

#[test]
fn the_services_that_check_tokens_are_given_the_public_key() {
    for (env, plan) in plans() {
        for service in SERVICES {
            let planned = plan.service(service.name).expect("a service of the spec");
            let has_key = planned
                .credentials
                .iter()
                .any(|c| c.name == credential::JWT_PUBLIC_KEY);
            assert_eq!(
                has_key,
                service.verifies_tokens,
                "{env}: {} checks tokens: {}; the spec gives it {}: {has_key}",
                service.name,
                service.verifies_tokens,
                credential::JWT_PUBLIC_KEY
            );
        }
    }
}
