//! A service's test environment from the resolved Plan.
//!
//! A test starts a service binary the way `teipsum dev` and its NixOS unit
//! start it: with the environment the Plan of the committed `config.ncl`
//! gives it. Only what a test instance changes is overridden — its database
//! in the throw-away cluster, the test broker, a free port, the credential
//! directory and a quieter log level — so topic producers, consumer groups,
//! token issuer, limits and every later setting come from the spec, and a
//! spec change reaches the tests without anyone retyping it.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use teipsum_conventions::env;
use teipsum_spec::{LoadError, Plan, load_spec, plan::ServicePlan};

use crate::free_port;

/// The environment whose Plan test instances start from: the one
/// `teipsum dev` runs by default.
pub const TEST_ENVIRONMENT: &str = "prod";

/// Why a test environment could not be derived from the Plan.
#[derive(Debug)]
pub enum PlanEnvError {
    /// `config.ncl` did not load (the message names its problems).
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What the loader said.
        error: LoadError,
    },
    /// The spec declares no such environment.
    NoEnvironment(String),
    /// The Plan has no such service.
    NoService(String),
    /// The service's Plan environment lacks a setting a test asked for.
    NoSetting {
        /// The service.
        service: String,
        /// The variable (`TEIPSUM_JWT_ISSUER`).
        name: String,
    },
    /// No free port to listen on.
    Port(crate::Error),
}

impl fmt::Display for PlanEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanEnvError::Spec { path, error } => {
                write!(f, "{}: {error}", path.display())?;
                if let LoadError::Invalid(diagnostics) = error {
                    for d in diagnostics {
                        write!(f, "\n  {d}")?;
                    }
                }
                Ok(())
            }
            PlanEnvError::NoEnvironment(name) => {
                write!(f, "config.ncl declares no environment `{name}`")
            }
            PlanEnvError::NoService(name) => write!(f, "the plan has no service `{name}`"),
            PlanEnvError::NoSetting { service, name } => {
                write!(f, "the plan gives service `{service}` no {name}")
            }
            PlanEnvError::Port(_) => write!(f, "no free port for the service to listen on"),
        }
    }
}

impl std::error::Error for PlanEnvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlanEnvError::Spec { error, .. } => Some(error),
            PlanEnvError::Port(error) => Some(error),
            _ => None,
        }
    }
}

/// The workspace's `config.ncl`.
pub fn config_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl")
}

/// The Plan of the committed `config.ncl` for [`TEST_ENVIRONMENT`], loaded
/// once per test binary.
pub fn committed_plan() -> Result<&'static Plan, PlanEnvError> {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    if let Some(plan) = PLAN.get() {
        return Ok(plan);
    }
    let path = config_file();
    let mut spec = load_spec(&path).map_err(|error| PlanEnvError::Spec {
        path: path.clone(),
        error,
    })?;
    let plan = spec
        .plans
        .remove(TEST_ENVIRONMENT)
        .ok_or_else(|| PlanEnvError::NoEnvironment(TEST_ENVIRONMENT.to_owned()))?;
    Ok(PLAN.get_or_init(|| plan))
}

/// What a test instance of a service changes in its Plan environment.
#[derive(Debug, Clone)]
pub struct TestInstance<'a> {
    /// The connection string of its database in the test cluster
    /// (`Postgres::create_database`).
    pub database: String,
    /// The test broker's bootstrap address (`Tansu::bootstrap`).
    pub brokers: &'a str,
    /// The directory of its credential files (`Credentials::path`), as
    /// systemd's `LoadCredential=` makes one on the host.
    pub credentials: &'a Path,
}

/// `service`'s environment in the committed Plan, with what a test
/// instance changes overridden (see [`plan_service_env`]).
pub fn service_env(
    service: &str,
    instance: &TestInstance<'_>,
) -> Result<BTreeMap<String, String>, PlanEnvError> {
    plan_service_env(committed_plan()?, service, instance)
}

/// `service`'s environment in `plan`, as its unit carries it, with only
/// what a test instance changes overridden: the database, the broker, the
/// credential directory, a free port on loopback to listen on, and the log
/// level (`TEST_SERVICE_LOG`, else `warn`). A test that needs another
/// setting (a tighter limit, a bad value) inserts it into the map.
pub fn plan_service_env(
    plan: &Plan,
    service: &str,
    instance: &TestInstance<'_>,
) -> Result<BTreeMap<String, String>, PlanEnvError> {
    let service = plan
        .service(service)
        .ok_or_else(|| PlanEnvError::NoService(service.to_owned()))?;
    let mut environment = instance_env(service, instance);
    environment.insert(
        env::LISTEN.to_owned(),
        format!(
            "{}:{}",
            service.address,
            free_port().map_err(PlanEnvError::Port)?
        ),
    );
    environment.insert(
        env::LOG.to_owned(),
        std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()),
    );
    // A metrics listener the Plan asks for gets a free port too: the
    // host's fixed one may be taken, and test instances run side by side.
    if environment.contains_key(env::METRICS_LISTEN) {
        metrics_listen(&mut environment).map_err(PlanEnvError::Port)?;
    }
    Ok(environment)
}

/// Have the service of `environment` serve `/metrics` on a free port of
/// loopback, not the one it listens on; returns that address.
pub fn metrics_listen(
    environment: &mut BTreeMap<String, String>,
) -> crate::Result<std::net::SocketAddr> {
    let listen_port: Vec<u16> = environment
        .get(env::LISTEN)
        .and_then(|l| l.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .into_iter()
        .collect();
    let port = crate::free_ports(1, &listen_port)?[0];
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    environment.insert(env::METRICS_LISTEN.to_owned(), addr.to_string());
    Ok(addr)
}

/// `service`'s Plan environment on a local instance: its database in the
/// local cluster, the local broker and its credential directory replace the
/// host's, and nothing else changes. `teipsum dev` runs services with this;
/// tests add a free port and a quieter log ([`plan_service_env`]).
pub fn instance_env(
    service: &ServicePlan,
    instance: &TestInstance<'_>,
) -> BTreeMap<String, String> {
    let mut environment = service.environment.clone();
    environment.insert(env::DATABASE.to_owned(), instance.database.clone());
    environment.insert(env::KAFKA_BROKERS.to_owned(), instance.brokers.to_owned());
    environment.insert(
        env::CREDENTIALS_DIR.to_owned(),
        instance.credentials.display().to_string(),
    );
    environment
}

/// A setting of `service` in the committed Plan, as its unit carries it
/// (what a test must agree with: the token issuer and audience it signs
/// with, the producers an operator command is told about).
pub fn plan_setting(service: &str, name: &str) -> Result<&'static str, PlanEnvError> {
    let plan = committed_plan()?;
    let found = plan
        .service(service)
        .ok_or_else(|| PlanEnvError::NoService(service.to_owned()))?;
    found
        .environment
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| PlanEnvError::NoSetting {
            service: service.to_owned(),
            name: name.to_owned(),
        })
}

/// The topics of the committed Plan that any of `services` produces or
/// consumes, with the Plan's partition counts, for `Tansu::create_topics`.
pub fn plan_topics(services: &[&str]) -> Result<Vec<(&'static str, i32)>, PlanEnvError> {
    let plan = committed_plan()?;
    if let Some(unknown) = services.iter().find(|s| plan.service(s).is_none()) {
        return Err(PlanEnvError::NoService((*unknown).to_owned()));
    }
    Ok(plan
        .kafka
        .topics
        .iter()
        .filter(|t| {
            t.producers
                .iter()
                .chain(&t.consumers)
                .any(|s| services.contains(&s.as_str()))
        })
        .map(|t| {
            (
                t.name.as_str(),
                i32::try_from(t.partitions).unwrap_or(i32::MAX),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(dir: &Path) -> TestInstance<'_> {
        TestInstance {
            database: "host=/tmp/test dbname=teipsum_order".to_owned(),
            brokers: "127.0.0.1:1",
            credentials: dir,
        }
    }

    #[test]
    fn a_test_environment_is_the_plans_but_for_what_an_instance_changes() {
        let plan = committed_plan().unwrap();
        let dir = Path::new("/tmp/credentials");
        let test = service_env("order", &instance(dir)).unwrap();
        let unit = &plan.service("order").unwrap().environment;
        // On a host systemd names the credential directory
        // (`CREDENTIALS_DIRECTORY`); a test names its own. Nothing else is
        // added or dropped.
        assert_eq!(
            test.keys()
                .filter(|k| *k != env::CREDENTIALS_DIR)
                .collect::<Vec<_>>(),
            unit.keys().collect::<Vec<_>>(),
            "no setting added or dropped"
        );
        let changed: Vec<&str> = test
            .iter()
            .filter(|(k, v)| unit.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        for name in changed {
            assert!(
                [
                    env::DATABASE,
                    env::KAFKA_BROKERS,
                    env::LISTEN,
                    env::METRICS_LISTEN,
                    env::LOG,
                    env::CREDENTIALS_DIR
                ]
                .contains(&name),
                "{name} changed"
            );
        }
        assert_eq!(test[env::TOPIC_PRODUCERS], unit[env::TOPIC_PRODUCERS]);
        assert_eq!(test[env::CREDENTIALS_DIR], "/tmp/credentials");
        assert!(test[env::LISTEN].starts_with("127.0.0.1:"));
    }

    #[test]
    fn the_topics_of_a_service_are_those_it_produces_or_consumes() {
        let topics: Vec<&str> = plan_topics(&["user"])
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(topics, ["user-login", "user-registered"]);
        assert!(matches!(
            plan_topics(&["nobody"]),
            Err(PlanEnvError::NoService(_))
        ));
        assert!(plan_setting("order", env::JWT_ISSUER).is_ok());
        assert!(matches!(
            plan_setting("order", "TEIPSUM_NOTHING"),
            Err(PlanEnvError::NoSetting { .. })
        ));
    }
}
