//! The spec's typed values: one [`Duration`], one [`MemorySize`] and the
//! closed sets of words (`'kraft`, `'letsencrypt_staging`, ...), each parsed
//! once, when the exported spec is deserialised.
//!
//! Nickel's contracts check the same syntax first, with their own messages;
//! a value that gets past them but not past these parsers means the compiler
//! and `platform.ncl` disagree, and the loader reports it at its field path.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, de};

/// A span of time written as a number and a unit: `500ms`, `30s`, `15min`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    amount: u64,
    unit: TimeUnit,
}

/// The unit a [`Duration`] was written in (kept so that messages quote the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl TimeUnit {
    const ALL: [TimeUnit; 5] = [
        TimeUnit::Millis,
        TimeUnit::Seconds,
        TimeUnit::Minutes,
        TimeUnit::Hours,
        TimeUnit::Days,
    ];

    fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Millis => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "min",
            TimeUnit::Hours => "h",
            TimeUnit::Days => "d",
        }
    }

    fn millis(self) -> u64 {
        match self {
            TimeUnit::Millis => 1,
            TimeUnit::Seconds => 1_000,
            TimeUnit::Minutes => 60_000,
            TimeUnit::Hours => 3_600_000,
            TimeUnit::Days => 86_400_000,
        }
    }
}

impl Duration {
    /// Milliseconds (parsing made sure they fit in a `u64`).
    pub fn millis(self) -> u64 {
        self.amount * self.unit.millis()
    }

    /// Whole seconds, rounded up: `500ms` is one second, never zero.
    pub fn secs(self) -> u64 {
        self.millis().div_ceil(1000)
    }

    /// Whether it is no time at all, in whatever unit (`0s`, `0ms`).
    pub fn is_zero(self) -> bool {
        self.amount == 0
    }
}

/// Why a text is not a [`Duration`] or a [`MemorySize`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a number followed by a known unit.
    #[error("`{0}` is not a duration; write a number and a unit: `30s`, `15min`, `2h`, `7d`")]
    NotADuration(String),
    /// A memory size without `K`, `M` or `G`, or not a number.
    #[error("`{0}` is not a memory size; write a number and `K`, `M` or `G`: `512M`, `2G`")]
    NotAMemorySize(String),
    /// Well formed but too large for the compiler to count.
    #[error("`{0}` is too large for the compiler to count")]
    TooLarge(String),
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let not = || UnitError::NotADuration(text.to_owned());
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(not)?;
        let (number, suffix) = text.split_at(split);
        let unit = TimeUnit::ALL
            .into_iter()
            .find(|u| u.suffix() == suffix)
            .ok_or_else(not)?;
        if number.is_empty() {
            return Err(not());
        }
        let amount: u64 = number
            .parse()
            .map_err(|_| UnitError::TooLarge(text.to_owned()))?;
        amount
            .checked_mul(unit.millis())
            .ok_or_else(|| UnitError::TooLarge(text.to_owned()))?;
        Ok(Self { amount, unit })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// A memory size as systemd writes it: a number and `K`, `M` or `G` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySize {
    amount: u64,
    unit: MemoryUnit,
}

/// The unit a [`MemorySize`] was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemoryUnit {
    Kibi,
    Mebi,
    Gibi,
}

impl MemoryUnit {
    const ALL: [MemoryUnit; 3] = [MemoryUnit::Kibi, MemoryUnit::Mebi, MemoryUnit::Gibi];

    fn suffix(self) -> char {
        match self {
            MemoryUnit::Kibi => 'K',
            MemoryUnit::Mebi => 'M',
            MemoryUnit::Gibi => 'G',
        }
    }

    fn shift(self) -> u32 {
        match self {
            MemoryUnit::Kibi => 10,
            MemoryUnit::Mebi => 20,
            MemoryUnit::Gibi => 30,
        }
    }
}

impl MemorySize {
    /// Bytes (parsing made sure they fit in a `u64`).
    pub fn bytes(self) -> u64 {
        self.amount << self.unit.shift()
    }
}

impl FromStr for MemorySize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let not = || UnitError::NotAMemorySize(text.to_owned());
        let suffix = text.chars().last().ok_or_else(not)?;
        let unit = MemoryUnit::ALL
            .into_iter()
            .find(|u| u.suffix() == suffix)
            .ok_or_else(not)?;
        let number = &text[..text.len() - 1];
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not());
        }
        let amount: u64 = number
            .parse()
            .map_err(|_| UnitError::TooLarge(text.to_owned()))?;
        amount
            .checked_mul(1 << unit.shift())
            .ok_or_else(|| UnitError::TooLarge(text.to_owned()))?;
        Ok(Self { amount, unit })
    }
}

impl fmt::Display for MemorySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// Deserialise a value from the string Nickel exported, naming what it should have been.
fn from_text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = UnitError>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer)
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_text(deserializer)
    }
}

/// An enum of the words a field may take, spelt as the spec spells them
/// (Nickel exports an enum tag such as `'kraft` as the string `"kraft"`).
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// The word as the spec writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set! {
    /// How Kafka coordinates itself (`kafka.mode`).
    Coordination {
        /// Kafka 3.9 with a ZooKeeper ensemble of one.
        Zookeeper = "zookeeper",
        /// KRaft: the broker is its own controller.
        Kraft = "kraft",
    }
}

closed_set! {
    /// Which Let's Encrypt directory issues the certificates (`acme.ca`).
    AcmeCa {
        /// Production: certificates every browser trusts.
        Letsencrypt = "letsencrypt",
        /// Staging: untrusted test certificates, generous rate limits.
        LetsencryptStaging = "letsencrypt_staging",
    }
}

/// Let's Encrypt production directory.
const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt staging directory (untrusted certificates, generous limits).
const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

impl AcmeCa {
    /// The ACME directory URL.
    pub fn directory(self) -> &'static str {
        match self {
            AcmeCa::Letsencrypt => LETSENCRYPT,
            AcmeCa::LetsencryptStaging => LETSENCRYPT_STAGING,
        }
    }

    /// Whether browsers trust what it issues.
    pub fn is_trusted(self) -> bool {
        self == AcmeCa::Letsencrypt
    }
}

closed_set! {
    /// Compression of the database dumps (`postgres.backup.compression`).
    Compression {
        /// Plain SQL.
        None = "none",
        /// gzip.
        Gzip = "gzip",
        /// zstd.
        Zstd = "zstd",
    }
}

closed_set! {
    /// The services' log level (`log_level`).
    LogLevel {
        /// Errors only.
        Error = "error",
        /// Warnings and errors.
        Warn = "warn",
        /// The default.
        Info = "info",
        /// Verbose.
        Debug = "debug",
        /// Everything.
        Trace = "trace",
    }
}

closed_set! {
    /// A topic's `cleanup.policy`.
    CleanupPolicy {
        /// Drop events older than the retention.
        Delete = "delete",
        /// Keep the latest event of each key after the retention.
        Compact = "compact",
    }
}

closed_set! {
    /// A host's Nix system.
    System {
        /// 64-bit x86.
        X86_64Linux = "x86_64-linux",
        /// 64-bit ARM.
        Aarch64Linux = "aarch64-linux",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Option<Duration> {
        text.parse().ok()
    }

    #[test]
    fn durations_have_units() {
        assert_eq!(duration("30s").map(Duration::secs), Some(30));
        assert_eq!(duration("15min").map(Duration::secs), Some(900));
        assert_eq!(duration("2h").map(Duration::secs), Some(7200));
        assert_eq!(duration("7d").map(Duration::secs), Some(604_800));
        assert_eq!(duration("500ms").map(Duration::secs), Some(1));
        assert_eq!(duration("500ms").map(Duration::millis), Some(500));
        assert_eq!(duration("30"), None);
        assert_eq!(duration("s"), None);
        assert_eq!(duration("3w"), None);
        assert_eq!(duration("99999999999999999999d"), None);
        assert_eq!(duration("999999999999999999d"), None);
    }

    #[test]
    fn durations_print_as_written() {
        assert_eq!(duration("15min").unwrap().to_string(), "15min");
        assert!(duration("0ms").unwrap().is_zero());
    }

    #[test]
    fn a_bad_duration_says_what_to_write() {
        assert_eq!(
            "7 days".parse::<Duration>().unwrap_err().to_string(),
            "`7 days` is not a duration; write a number and a unit: `30s`, `15min`, `2h`, `7d`"
        );
    }

    #[test]
    fn memory_sizes_are_powers_of_1024() {
        let size = |t: &str| t.parse::<MemorySize>().ok().map(MemorySize::bytes);
        assert_eq!(size("512M"), Some(512 << 20));
        assert_eq!(size("2G"), Some(2 << 30));
        assert_eq!(size("64K"), Some(64 << 10));
        assert_eq!(size("512m"), None);
        assert_eq!(size("M"), None);
        assert_eq!(size("-1M"), None);
        assert_eq!(size("99999999999999999G"), None);
        assert_eq!("512M".parse::<MemorySize>().unwrap().to_string(), "512M");
    }

    #[test]
    fn closed_sets_read_the_spec_words() {
        let mode: Coordination = serde_json::from_str("\"kraft\"").unwrap();
        assert_eq!(mode, Coordination::Kraft);
        assert_eq!(System::X86_64Linux.as_str(), "x86_64-linux");
        assert!(serde_json::from_str::<AcmeCa>("\"zerossl\"").is_err());
        assert!(!AcmeCa::LetsencryptStaging.is_trusted());
    }
}
