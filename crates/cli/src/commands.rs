//! The subcommands. Each returns the process exit code.

use std::path::Path;

use teipsum_spec::{Plan, Spec, load_spec};

use crate::{EXIT_FAILED, EXIT_OK, GraphFormat, graph, report};

/// Load and check the spec, printing diagnostics on failure.
fn load(file: &Path, json: bool) -> Result<Spec, u8> {
    load_spec(file).map_err(|e| report::load_error(file, &e, json))
}

/// The plan of `env`, or an error naming the environments that exist.
fn plan_of<'a>(spec: &'a Spec, env: &str) -> Result<&'a Plan, u8> {
    spec.plans.get(env).ok_or_else(|| {
        let known: Vec<&str> = spec.plans.keys().map(String::as_str).collect();
        eprintln!(
            "error: no environment `{env}`; the spec declares: {}",
            known.join(", ")
        );
        EXIT_FAILED
    })
}

/// `teipsum check`.
pub fn check(file: &Path, json: bool) -> u8 {
    let spec = match load(file, json) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    if json {
        report::diagnostics_json(&spec.warnings);
    } else {
        report::diagnostics_text(file, &spec.warnings, teipsum_spec::Severity::Warning);
        println!("{}", summary(file, &spec));
    }
    EXIT_OK
}

/// One line saying what the spec declares.
pub fn summary(file: &Path, spec: &Spec) -> String {
    let first = spec.plans.values().next();
    let services = first.map_or(0, |p| p.services.len());
    let topics = first.map_or(0, |p| p.kafka.topics.len());
    let routes = first.map_or(0, |p| p.nginx.routes.len());
    let environments: Vec<String> = spec
        .plans
        .values()
        .map(|p| format!("{} ({})", p.environment, p.domain))
        .collect();
    format!(
        "{}: ok: {services} services, {topics} topics, {routes} routes, {services} databases; environments: {}",
        file.display(),
        environments.join(", ")
    )
}

/// `teipsum plan`.
pub fn plan(file: &Path, env: &str) -> u8 {
    let spec = match load(file, false) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    match plan_of(&spec, env) {
        Ok(plan) => {
            println!(
                "{}",
                serde_json::to_string_pretty(plan).expect("plans serialize")
            );
            EXIT_OK
        }
        Err(code) => code,
    }
}

/// `teipsum graph`.
pub fn graph(file: &Path, env: &str, format: GraphFormat) -> u8 {
    let spec = match load(file, false) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    match plan_of(&spec, env) {
        Ok(plan) => {
            let text = match format {
                GraphFormat::Mermaid => graph::mermaid(plan),
                GraphFormat::Dot => graph::dot(plan),
            };
            print!("{text}");
            EXIT_OK
        }
        Err(code) => code,
    }
}

/// `teipsum explain`.
pub fn explain(file: &Path, service: &str, env: &str) -> u8 {
    let spec = match load(file, false) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    let plan = match plan_of(&spec, env) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    match explain_text(plan, service) {
        Some(text) => {
            print!("{text}");
            EXIT_OK
        }
        None => {
            let known: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
            eprintln!(
                "error: no service `{service}`; the spec declares: {}",
                known.join(", ")
            );
            EXIT_FAILED
        }
    }
}

/// Everything about one service, for a human.
pub fn explain_text(plan: &Plan, service: &str) -> Option<String> {
    use std::fmt::Write;
    let s = plan.service(service)?;
    let mut out = String::new();
    let none = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "{} ({}), environment {} on host {}",
        s.name, s.description, plan.environment, s.host
    );
    let profile = &s.profile;
    let mut unit = vec![format!("Type={}", profile.kind.as_str())];
    if let Some(secs) = profile.watchdog_sec {
        unit.push(format!("WatchdogSec={secs}s"));
    }
    unit.push(format!("Restart={}", profile.restart.policy.as_str()));
    if let Some(delay) = profile.restart.delay() {
        unit.push(format!("RestartSec={delay}"));
    }
    if let Some(secs) = profile.timeout_stop_sec {
        unit.push(format!("TimeoutStopSec={secs}s"));
    }
    let _ = writeln!(out, "  unit        {} ({})", s.unit, unit.join(", "));
    let _ = writeln!(out, "  binary      {}", s.binary);
    let _ = writeln!(out, "  user/group  {}/{}", s.user, s.group);
    let _ = writeln!(
        out,
        "  listens on  {}:{} (loopback only)",
        s.address, s.port
    );
    let routes: Vec<String> = s
        .routes
        .iter()
        .map(|r| format!("https://{}{r}", plan.domain))
        .collect();
    let _ = writeln!(out, "  routes      {}", none(&routes));
    let _ = writeln!(
        out,
        "  database    {} (role {}, peer authentication over {})",
        s.database, s.role, plan.postgres.socket_dir
    );
    let _ = writeln!(out, "  produces    {}", none(&s.produces));
    let _ = writeln!(out, "  consumes    {}", none(&s.consumes));
    let _ = writeln!(out, "  client id   {}", s.kafka_client_id);
    if let Some(group) = &s.consumer_group {
        let _ = writeln!(out, "  group       {group}");
    }
    for topic in &s.produces {
        if let Some(t) = plan.topic(topic) {
            let _ = writeln!(out, "    {topic} → {}", none(&t.consumers));
        }
    }
    for topic in &s.consumes {
        if let Some(t) = plan.topic(topic) {
            let _ = writeln!(out, "    {topic} ← {}", none(&t.producers));
        }
    }
    if s.credentials.is_empty() {
        let _ = writeln!(out, "  secrets     none");
    }
    for c in &s.credentials {
        let _ = writeln!(
            out,
            "  secret      {} ← {} (LoadCredential)",
            c.name, c.path
        );
    }
    let _ = writeln!(
        out,
        "  health      {} (liveness), {} (readiness)",
        s.health, s.ready
    );
    let _ = writeln!(out, "  after       {}", s.after.join(" "));
    let _ = writeln!(out, "  environment");
    for (k, v) in &s.environment {
        let _ = writeln!(out, "    {k}={v}");
    }
    Some(out)
}

/// `teipsum compile`.
pub fn compile(file: &Path, out: &Path, env: &str, check: bool) -> u8 {
    match load(file, false) {
        Ok(spec) => crate::compile::compile(&spec, file, out, env, check),
        Err(code) => code,
    }
}

/// `teipsum diff`.
pub fn diff(file: &Path, out: &Path, env: &str, from: Option<&Path>, exit_code: bool) -> u8 {
    let spec = match load(file, false) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    let old = match from {
        None => None,
        Some(from) => match load(from, false) {
            Ok(old) => match old.plans.get(env) {
                Some(plan) => Some(plan.clone()),
                None => {
                    eprintln!("error: {} has no environment `{env}`", from.display());
                    return EXIT_FAILED;
                }
            },
            Err(code) => return code,
        },
    };
    crate::compile::diff(&spec, out, env, old.as_ref(), exit_code)
}

/// `teipsum render unit`.
pub fn render_unit(file: &Path, service: &str, env: &str, bin_dir: &str) -> u8 {
    let spec = match load(file, false) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    let plan = match plan_of(&spec, env) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    match crate::compile::render_unit(plan, service, bin_dir) {
        Ok(text) => {
            print!("{text}");
            EXIT_OK
        }
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_FAILED
        }
    }
}

/// `teipsum topics apply`.
pub fn topics_apply(
    file: &Path,
    bootstrap: Option<&str>,
    env: &str,
    topics: &[String],
    wait: u64,
) -> u8 {
    use teipsum_kit::kafka::{TopicOutcome, TopicSpec, apply_topics};
    teipsum_kit::telemetry::init("warn");
    let (specs, bootstrap) = if topics.is_empty() {
        let spec = match load(file, false) {
            Ok(spec) => spec,
            Err(code) => return code,
        };
        let plan = match plan_of(&spec, env) {
            Ok(plan) => plan,
            Err(code) => return code,
        };
        let specs = match topic_specs(plan) {
            Ok(specs) => specs,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILED;
            }
        };
        (
            specs,
            bootstrap
                .map(str::to_owned)
                .unwrap_or_else(|| plan.kafka.bootstrap.clone()),
        )
    } else {
        let parsed: Result<Vec<TopicSpec>, String> = topics.iter().map(|t| t.parse()).collect();
        match (parsed, bootstrap) {
            (Ok(specs), Some(bootstrap)) => (specs, bootstrap.to_owned()),
            (Err(e), _) => {
                eprintln!("error: {e}");
                return crate::EXIT_FAILED;
            }
            (_, None) => {
                eprintln!("error: --topic needs --bootstrap");
                return crate::EXIT_FAILED;
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(apply_topics(
        &bootstrap,
        &specs,
        std::time::Duration::from_secs(wait),
    )) {
        Ok(outcomes) => {
            for (topic, outcome) in outcomes {
                let what = match outcome {
                    TopicOutcome::Created => "created".to_owned(),
                    TopicOutcome::Grown { from } => format!("partitions grown from {from}"),
                    TopicOutcome::KeptLarger { has } => {
                        format!("kept its {has} partitions (partitions are never removed)")
                    }
                    TopicOutcome::Unchanged => "unchanged".to_owned(),
                };
                println!("{topic}: {what}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// `teipsum keygen jwt`: make sure the signing key pair exists and matches.
///
/// Idempotent, as `ssh-keygen -A` is for host keys: a missing pair is
/// created; an existing private key is never replaced (tokens are signed
/// with it), and a missing or stale public half is derived from it again, so
/// that a lost `.pub` cannot keep every service from starting. Every file is
/// written to a temporary name, synced and then moved into place, so a crash
/// leaves either the old file or the new one, never half a key.
pub fn keygen_jwt(private: &Path, public: &Path) -> u8 {
    match ensure_jwt_keys(private, public) {
        Ok(done) => {
            println!("{done}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn ensure_jwt_keys(private: &Path, public: &Path) -> Result<String, String> {
    let private_pem = match std::fs::read_to_string(private) {
        Ok(pem) => Some(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", private.display())),
    };
    let Some(private_pem) = private_pem else {
        let (private_pem, public_pem) = teipsum_kit::jwt::generate_keypair();
        // The public half first: a crash between the two leaves no private
        // key, so the next run starts over.
        write_atomically(public, &public_pem, 0o444, true)?;
        write_atomically(private, &private_pem, 0o400, false)?;
        return Ok(format!(
            "wrote {} and {}",
            private.display(),
            public.display()
        ));
    };
    let expected = teipsum_kit::jwt::public_key_of(&private_pem)
        .map_err(|e| format!("{}: {e}", private.display()))?;
    match std::fs::read_to_string(public) {
        Ok(current) if current == expected => Ok(format!(
            "{} and {} exist and match",
            private.display(),
            public.display()
        )),
        Ok(_) | Err(_) => {
            write_atomically(public, &expected, 0o444, true)?;
            Ok(format!(
                "derived {} again from {}",
                public.display(),
                private.display()
            ))
        }
    }
}

/// Writes `contents` to `path` through a synced temporary file. With
/// `replace = false` an existing `path` is an error (link(2) never replaces).
fn write_atomically(path: &Path, contents: &str, mode: u32, replace: bool) -> Result<(), String> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        if replace {
            std::fs::rename(&temporary, path)?;
        } else {
            std::fs::hard_link(&temporary, path)?;
            std::fs::remove_file(&temporary)?;
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The plan's topics as `teipsum topics apply` creates them: the same
/// `--topic` arguments the topics unit passes ([`teipsum_spec::plan::TopicPlan::apply_arg`]).
fn topic_specs(plan: &Plan) -> Result<Vec<teipsum_kit::kafka::TopicSpec>, String> {
    plan.kafka
        .topics
        .iter()
        .map(|t| t.apply_arg().parse())
        .collect()
}

/// `teipsum restore`: the plan from `plan_file` (a host's
/// `/etc/teipsum/plan.json`) or else from the spec; exit 1 when neither
/// reads, 3 when the restore refuses (nothing changed) or fails.
pub fn restore(
    file: &Path,
    plan_file: Option<&Path>,
    env: &str,
    database: &str,
    from: &Path,
) -> u8 {
    let plan = match host_plan(file, plan_file, env) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    match crate::restore::run(&plan, database, from) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// `teipsum status`: read everything the plan names on this host; exit 5
/// when something is wrong, 1 or 3 when there is no plan to read.
pub fn status(file: &Path, plan_file: Option<&Path>, env: &str, json: bool) -> u8 {
    let plan = match host_plan(file, plan_file, env) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let site = crate::status::Site::of_host(&plan);
    show_status(&plan, &site, json)
}

/// `teipsum status --dev <state>`: the running `teipsum dev` whose state
/// directory is `state` (its `stack.json`); no units, dumps or certificate
/// record there.
pub fn status_dev(state: &Path, env: &str, json: bool) -> u8 {
    let stack = match crate::status::DevStack::read(state) {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if stack.plan.environment != env {
        eprintln!(
            "error: teipsum dev runs environment `{}`, not `{env}`",
            stack.plan.environment
        );
        return EXIT_FAILED;
    }
    let site = stack.site();
    show_status(&stack.plan, &site, json)
}

/// Read, print, and exit 5 when something is wrong.
fn show_status(plan: &Plan, site: &crate::status::Site<'_>, json: bool) -> u8 {
    let status = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(crate::status::read(plan, site)),
        Err(e) => {
            eprintln!("error: no runtime: {e}");
            return EXIT_FAILED;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("the status serializes")
        );
    } else {
        print!("{}", crate::status::render(&status));
    }
    if status.problems.is_empty() {
        EXIT_OK
    } else {
        crate::EXIT_PROBLEMS
    }
}

/// The plan from `plan_file` (a host's `/etc/teipsum/plan.json`) or else
/// from the spec, which must be `env`'s: exit 1 when neither reads, 3 for
/// another environment's plan.
fn host_plan(file: &Path, plan_file: Option<&Path>, env: &str) -> Result<Plan, u8> {
    let plan = match plan_file {
        Some(path) => crate::compile::read_plan(path).map_err(|e| {
            eprintln!("error: cannot read the plan {}: {e}", path.display());
            crate::EXIT_INVALID
        })?,
        None => {
            let spec = load(file, false)?;
            plan_of(&spec, env)?.clone()
        }
    };
    if plan.environment != env {
        eprintln!(
            "error: the plan is environment `{}`, not `{env}`",
            plan.environment
        );
        return Err(EXIT_FAILED);
    }
    Ok(plan)
}
