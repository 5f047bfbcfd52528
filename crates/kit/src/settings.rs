//! Settings from the environment, secrets from credential files.
//!
//! The names are those of [`teipsum_conventions::env`], which the generated
//! units and `teipsum dev` set. Secrets never travel through the
//! environment: they are files in `$CREDENTIALS_DIRECTORY` (systemd's
//! `LoadCredential=`), or in `$TEIPSUM_CREDENTIALS_DIR` for local runs.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use teipsum_conventions::env;

/// Why the service cannot start with the settings it was given.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is not set.
    #[error("{name} is not set ({what})")]
    Missing {
        /// Variable name.
        name: &'static str,
        /// What it should contain.
        what: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{name}={value:?} is not valid: {reason}")]
    Malformed {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// No credential directory is configured.
    #[error(
        "credential `{name}` is needed but neither CREDENTIALS_DIRECTORY nor TEIPSUM_CREDENTIALS_DIR is set"
    )]
    NoCredentialDirectory {
        /// Credential name.
        name: String,
    },
    /// A credential file cannot be read.
    #[error("cannot read credential `{name}` from {}: {source}", path.display())]
    Credential {
        /// Credential name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where a value comes from: the process environment, or a fixed map (tests).
#[derive(Debug, Clone)]
pub enum Source {
    /// `std::env`.
    Process,
    /// Explicit values.
    Map(BTreeMap<String, String>),
}

impl Source {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Source::Process => std::env::var(name).ok(),
            Source::Map(map) => map.get(name).cloned(),
        }
        .filter(|v| !v.is_empty())
    }
}

/// Everything a service reads at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Service name (`order`).
    pub service: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address of the metrics listener (`GET /metrics` only), when the unit
    /// asks for one.
    pub metrics_listen: Option<SocketAddr>,
    /// Connection string of the service's database.
    pub database: String,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// Consumer group, when the service consumes.
    pub kafka_group: Option<String>,
    /// Kafka client id; the service name when unset.
    pub kafka_client_id: String,
    /// The credential holding a remote database's CA, when the unit names one.
    pub database_ca_credential: Option<String>,
    /// Expected `iss` of access tokens.
    pub jwt_issuer: String,
    /// Expected `aud` of access tokens.
    pub jwt_audience: String,
    /// `tracing` filter.
    pub log: String,
    /// Directory of credential files.
    pub credentials_dir: Option<PathBuf>,
    /// The declared producers of each consumed topic (empty when unset).
    pub topic_producers: BTreeMap<String, BTreeSet<String>>,
    /// How old the oldest unsent outbox event may get while the service
    /// still counts as healthy.
    pub outbox_max_lag: Duration,
    /// How long consumed-event ids and idempotency keys are kept.
    pub retention: Duration,
    /// Most events the consumer applies in one transaction.
    pub consumer_batch: usize,
    source: Source,
}

/// Default of [`Settings::outbox_max_lag`]: a broker outage of minutes is
/// ridden out by the relay's backoff; longer, a restart is worth a try.
pub const DEFAULT_OUTBOX_MAX_LAG: Duration = Duration::from_secs(300);

/// Largest [`Settings::consumer_batch`] accepted: one transaction holds the
/// rows of a whole batch locked, and one failure replays it event by event.
pub const MAX_CONSUMER_BATCH: usize = 10_000;

/// Default of [`Settings::retention`]: the topics' 30 days and a week.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(37 * 86_400);

impl Settings {
    /// Read the settings of the running process.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(Source::Process)
    }

    /// Read the settings from `source`.
    pub fn from_source(source: Source) -> Result<Self, SettingsError> {
        let require = |name: &'static str, what: &'static str| {
            source
                .get(name)
                .ok_or(SettingsError::Missing { name, what })
        };
        let listen_text = require(
            env::LISTEN,
            "address:port to listen on, e.g. 127.0.0.1:8100",
        )?;
        let listen = listen_text.parse().map_err(|e| SettingsError::Malformed {
            name: env::LISTEN,
            value: listen_text.clone(),
            reason: format!("{e}; expected address:port such as 127.0.0.1:8100"),
        })?;
        let metrics_listen = source
            .get(env::METRICS_LISTEN)
            .map(|text| {
                text.parse().map_err(|e| SettingsError::Malformed {
                    name: env::METRICS_LISTEN,
                    value: text.clone(),
                    reason: format!("{e}; expected address:port such as 127.0.0.1:9100"),
                })
            })
            .transpose()?;
        let database = require(
            env::DATABASE,
            "connection string, e.g. host=/run/postgresql dbname=teipsum_order user=teipsum_order",
        )?;
        if let Err(e) = database.parse::<postgres::Config>() {
            return Err(SettingsError::Malformed {
                name: env::DATABASE,
                value: database,
                reason: e.to_string(),
            });
        }
        let topic_producers = match source.get(env::TOPIC_PRODUCERS) {
            None => BTreeMap::new(),
            Some(text) => teipsum_conventions::parse_producers(&text)
                .map_err(|reason| SettingsError::Malformed {
                    name: env::TOPIC_PRODUCERS,
                    value: text.clone(),
                    reason,
                })?
                .into_iter()
                .map(|(topic, producers)| (topic, producers.into_iter().collect()))
                .collect(),
        };
        let seconds = |name: &'static str, default: Duration, min: u64| match source.get(name) {
            None => Ok(default),
            Some(value) => match value.parse::<u64>() {
                Ok(n) if n >= min => Ok(Duration::from_secs(n)),
                _ => Err(SettingsError::Malformed {
                    name,
                    value,
                    reason: format!("expected a whole number of seconds, at least {min}"),
                }),
            },
        };
        let outbox_max_lag = seconds(env::OUTBOX_MAX_LAG_SECS, DEFAULT_OUTBOX_MAX_LAG, 1)?;
        let retention = seconds(env::RETENTION_SECS, DEFAULT_RETENTION, 3600)?;
        let consumer_batch = match source.get(env::CONSUMER_BATCH) {
            None => crate::events::DEFAULT_BATCH,
            Some(value) => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_CONSUMER_BATCH).contains(&n) => n,
                _ => {
                    return Err(SettingsError::Malformed {
                        name: env::CONSUMER_BATCH,
                        value,
                        reason: format!("expected a whole number from 1 to {MAX_CONSUMER_BATCH}"),
                    });
                }
            },
        };
        let credentials_dir = source
            .get(env::SYSTEMD_CREDENTIALS_DIRECTORY)
            .or_else(|| source.get(env::CREDENTIALS_DIR))
            .map(PathBuf::from);
        let service = require(env::SERVICE, "the service name, e.g. order")?;
        Ok(Settings {
            kafka_client_id: source
                .get(env::KAFKA_CLIENT_ID)
                .unwrap_or_else(|| service.clone()),
            database_ca_credential: source.get(env::DATABASE_CA_CREDENTIAL),
            service,
            listen,
            metrics_listen,
            database,
            kafka_brokers: require(env::KAFKA_BROKERS, "bootstrap servers, e.g. 127.0.0.1:9092")?,
            kafka_group: source.get(env::KAFKA_GROUP),
            jwt_issuer: require(env::JWT_ISSUER, "the `iss` of access tokens")?,
            jwt_audience: require(env::JWT_AUDIENCE, "the `aud` of access tokens")?,
            log: source.get(env::LOG).unwrap_or_else(|| "info".to_owned()),
            credentials_dir,
            topic_producers,
            outbox_max_lag,
            retention,
            consumer_batch,
            source,
        })
    }

    /// A service-specific variable, if set.
    pub fn var(&self, name: &str) -> Option<String> {
        self.source.get(name)
    }

    /// A service-specific variable parsed as `T`, or `default` when unset.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, SettingsError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.var(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| SettingsError::Malformed {
                name,
                value,
                reason: e.to_string(),
            }),
        }
    }

    /// The contents of credential `name`.
    pub fn credential(&self, name: &str) -> Result<Vec<u8>, SettingsError> {
        let dir = self.credentials_dir.as_deref().ok_or_else(|| {
            SettingsError::NoCredentialDirectory {
                name: name.to_owned(),
            }
        })?;
        read_credential(dir, name)
    }

    /// The contents of credential `name`, or `None` when the file does not exist.
    pub fn optional_credential(&self, name: &str) -> Result<Option<Vec<u8>>, SettingsError> {
        match self.credentials_dir.as_deref() {
            None => Ok(None),
            Some(dir) if !dir.join(name).exists() => Ok(None),
            Some(dir) => read_credential(dir, name).map(Some),
        }
    }
}

fn read_credential(dir: &Path, name: &str) -> Result<Vec<u8>, SettingsError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| SettingsError::Credential {
        name: name.to_owned(),
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            (env::SERVICE, "order"),
            (env::LISTEN, "127.0.0.1:8100"),
            (
                env::DATABASE,
                "host=/run/postgresql dbname=teipsum_order user=teipsum_order",
            ),
            (env::KAFKA_BROKERS, "127.0.0.1:9092"),
            (env::JWT_ISSUER, "https://teipsum.store"),
            (env::JWT_AUDIENCE, "teipsum"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn a_complete_environment_is_read() {
        let s = Settings::from_source(Source::Map(base())).unwrap();
        assert_eq!(s.service, "order");
        assert_eq!(s.listen.port(), 8100);
        assert_eq!(s.log, "info");
        assert!(s.kafka_group.is_none());
    }

    #[test]
    fn a_missing_setting_is_named() {
        let mut map = base();
        map.remove(env::KAFKA_BROKERS);
        let err = Settings::from_source(Source::Map(map)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TEIPSUM_KAFKA_BROKERS is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_setting_is_named_with_its_value() {
        let mut map = base();
        map.insert(env::LISTEN.to_owned(), "localhost".to_owned());
        let err = Settings::from_source(Source::Map(map)).unwrap_err();
        assert!(
            err.to_string().contains("TEIPSUM_LISTEN=\"localhost\""),
            "{err}"
        );
        let mut map = base();
        map.insert(env::DATABASE.to_owned(), "host='unterminated".to_owned());
        let err = Settings::from_source(Source::Map(map)).unwrap_err();
        assert!(err.to_string().contains("TEIPSUM_DATABASE"), "{err}");
    }

    #[test]
    fn the_metrics_address_is_optional_and_checked() {
        let s = Settings::from_source(Source::Map(base())).unwrap();
        assert_eq!(s.metrics_listen, None);
        let mut map = base();
        map.insert(env::METRICS_LISTEN.to_owned(), "127.0.0.1:9100".to_owned());
        let s = Settings::from_source(Source::Map(map.clone())).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        map.insert(env::METRICS_LISTEN.to_owned(), "9100".to_owned());
        let err = Settings::from_source(Source::Map(map)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TEIPSUM_METRICS_LISTEN=\"9100\""),
            "{err}"
        );
    }

    #[test]
    fn producers_lag_and_retention_are_read_and_checked() {
        let s = Settings::from_source(Source::Map(base())).unwrap();
        assert!(s.topic_producers.is_empty());
        assert_eq!(s.outbox_max_lag, DEFAULT_OUTBOX_MAX_LAG);
        assert_eq!(s.retention, DEFAULT_RETENTION);
        let mut map = base();
        map.insert(
            env::TOPIC_PRODUCERS.to_owned(),
            "inventory-events=inventory;product-events=admin-product".to_owned(),
        );
        map.insert(env::OUTBOX_MAX_LAG_SECS.to_owned(), "60".to_owned());
        map.insert(env::RETENTION_SECS.to_owned(), "86400".to_owned());
        let s = Settings::from_source(Source::Map(map.clone())).unwrap();
        assert!(s.topic_producers["product-events"].contains("admin-product"));
        assert_eq!(s.outbox_max_lag, Duration::from_secs(60));
        assert_eq!(s.retention, Duration::from_secs(86_400));
        for (name, value) in [
            (env::TOPIC_PRODUCERS, "product-events"),
            (env::OUTBOX_MAX_LAG_SECS, "0"),
            (env::RETENTION_SECS, "60"),
        ] {
            let mut bad = map.clone();
            bad.insert(name.to_owned(), value.to_owned());
            let err = Settings::from_source(Source::Map(bad)).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn the_consumer_batch_bound_is_read_and_checked() {
        let s = Settings::from_source(Source::Map(base())).unwrap();
        assert_eq!(s.consumer_batch, crate::events::DEFAULT_BATCH);
        let mut map = base();
        map.insert(env::CONSUMER_BATCH.to_owned(), "32".to_owned());
        assert_eq!(
            Settings::from_source(Source::Map(map.clone()))
                .unwrap()
                .consumer_batch,
            32
        );
        for value in ["0", "10001", "many"] {
            map.insert(env::CONSUMER_BATCH.to_owned(), value.to_owned());
            let err = Settings::from_source(Source::Map(map.clone())).unwrap_err();
            assert!(err.to_string().starts_with(env::CONSUMER_BATCH), "{err}");
        }
    }

    #[test]
    fn credentials_come_from_files_and_systemd_wins() {
        let dir = std::env::temp_dir().join(format!("kit-cred-{}", std::process::id()));
        let sysd = dir.join("systemd");
        let local = dir.join("local");
        std::fs::create_dir_all(&sysd).unwrap();
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(sysd.join("k"), "from systemd").unwrap();
        std::fs::write(local.join("k"), "from local").unwrap();
        let mut map = base();
        map.insert(env::CREDENTIALS_DIR.to_owned(), local.display().to_string());
        let s = Settings::from_source(Source::Map(map.clone())).unwrap();
        assert_eq!(s.credential("k").unwrap(), b"from local");
        map.insert(
            env::SYSTEMD_CREDENTIALS_DIRECTORY.to_owned(),
            sysd.display().to_string(),
        );
        let s = Settings::from_source(Source::Map(map)).unwrap();
        assert_eq!(s.credential("k").unwrap(), b"from systemd");
        let err = s.credential("absent").unwrap_err();
        assert!(
            err.to_string().contains("cannot read credential `absent`"),
            "{err}"
        );
        assert!(s.optional_credential("absent").unwrap().is_none());
    }
}
