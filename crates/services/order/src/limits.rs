//! What keeps one customer from holding all the stock: the spec's
//! `services.order.order_limits`, read from the unit's environment.

use std::time::Duration;

use teipsum_conventions::env;
use teipsum_kit::settings::Settings;

use crate::domain::MAX_QUANTITY;

/// The per-customer caps and the confirmation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most units of one product in one order (1 to [`MAX_QUANTITY`]).
    pub max_units: i32,
    /// Most orders one customer may have `PLACED` or `CONFIRMED` at once.
    pub max_open: i64,
    /// How long an order may stay `PLACED` before it expires.
    pub confirm_within: Duration,
}

impl Default for Limits {
    /// The defaults of `platform.ncl`, for a unit that sets nothing.
    fn default() -> Self {
        Limits {
            max_units: 10,
            max_open: 5,
            confirm_within: Duration::from_secs(15 * 60),
        }
    }
}

impl Limits {
    /// The limits `settings` carry, each checked.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Limits> {
        let default = Limits::default();
        let max_units: i32 = settings.parsed(env::ORDER_MAX_UNITS, default.max_units)?;
        anyhow::ensure!(
            (1..=MAX_QUANTITY).contains(&max_units),
            "{} must be 1 to {MAX_QUANTITY}, not {max_units}",
            env::ORDER_MAX_UNITS
        );
        let max_open: i64 = settings.parsed(env::ORDER_MAX_OPEN, default.max_open)?;
        anyhow::ensure!(
            max_open >= 1,
            "{} must be at least 1, not {max_open}",
            env::ORDER_MAX_OPEN
        );
        let secs: u64 = settings.parsed(
            env::ORDER_CONFIRM_WITHIN_SECS,
            default.confirm_within.as_secs(),
        )?;
        anyhow::ensure!(
            (1..=7 * 86_400).contains(&secs),
            "{} must be 1 second to 7 days, not {secs}",
            env::ORDER_CONFIRM_WITHIN_SECS
        );
        Ok(Limits {
            max_units,
            max_open,
            confirm_within: Duration::from_secs(secs),
        })
    }

    /// How often the expiry sweep looks: a quarter of the window, between
    /// 100 ms and 30 s, so an order expires at most a quarter late.
    pub fn sweep_every(&self) -> Duration {
        (self.confirm_within / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use teipsum_kit::settings::Source;

    use super::*;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut map: BTreeMap<String, String> = [
            (env::SERVICE, "order"),
            (env::LISTEN, "127.0.0.1:1"),
            (env::DATABASE, "host=/tmp dbname=x user=x"),
            (env::KAFKA_BROKERS, "127.0.0.1:9092"),
            (env::JWT_ISSUER, "https://t"),
            (env::JWT_AUDIENCE, "t"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        map.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Settings::from_source(Source::Map(map)).unwrap()
    }

    #[test]
    fn limits_come_from_the_environment_and_are_bounded() {
        assert_eq!(
            Limits::from_settings(&settings(&[])).unwrap(),
            Limits::default()
        );
        let set = Limits::from_settings(&settings(&[
            (env::ORDER_MAX_UNITS, "3"),
            (env::ORDER_MAX_OPEN, "2"),
            (env::ORDER_CONFIRM_WITHIN_SECS, "60"),
        ]))
        .unwrap();
        assert_eq!(
            set,
            Limits {
                max_units: 3,
                max_open: 2,
                confirm_within: Duration::from_secs(60)
            }
        );
        assert_eq!(set.sweep_every(), Duration::from_secs(15));
        for bad in [
            (env::ORDER_MAX_UNITS, "0"),
            (env::ORDER_MAX_UNITS, "1001"),
            (env::ORDER_MAX_OPEN, "0"),
            (env::ORDER_CONFIRM_WITHIN_SECS, "0"),
            (env::ORDER_CONFIRM_WITHIN_SECS, "soon"),
        ] {
            assert!(Limits::from_settings(&settings(&[bad])).is_err(), "{bad:?}");
        }
    }
}
