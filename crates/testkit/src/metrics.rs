//! Reading what a service's `/metrics` answers: a strict parser of the
//! OpenMetrics text format as the services write it, and `promtool check
//! metrics` when Prometheus's tools are installed.

use std::{
    collections::BTreeMap,
    io::Write,
    process::{Command, Stdio},
};

/// One sample: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`http_server_request_duration_seconds_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Each family's type (`counter`, `gauge`, `histogram`), by family name
    /// (without `_total` or `_bucket`).
    pub families: BTreeMap<String, String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parse `text`: `# HELP`, `# TYPE` and `# UNIT` lines, samples, and
    /// `# EOF` as the last line; anything else is an error naming the line.
    /// Each sample belongs to the family declared before it.
    pub fn parse(text: &str) -> std::result::Result<Scrape, String> {
        let mut scrape = Scrape::default();
        let mut current: Option<String> = None;
        let mut ended = false;
        for (n, line) in text.lines().enumerate() {
            let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            if ended {
                return Err(at("after # EOF"));
            }
            if line == "# EOF" {
                ended = true;
                continue;
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let (kind, rest) = meta.split_once(' ').ok_or_else(|| at("bare comment"))?;
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                if !valid_name(name) {
                    return Err(at("bad family name"));
                }
                match kind {
                    "TYPE" => {
                        let types = [
                            "counter",
                            "gauge",
                            "histogram",
                            "gaugehistogram",
                            "summary",
                            "info",
                            "stateset",
                            "unknown",
                        ];
                        if !types.contains(&value) {
                            return Err(at("unknown type"));
                        }
                        if scrape
                            .families
                            .insert(name.to_owned(), value.to_owned())
                            .is_some()
                        {
                            return Err(at("family declared twice"));
                        }
                        current = Some(name.to_owned());
                    }
                    "HELP" | "UNIT" => {}
                    _ => return Err(at("unknown comment")),
                }
                continue;
            }
            let sample = parse_sample(line).map_err(|why| at(&why))?;
            let family = current
                .as_deref()
                .ok_or_else(|| at("sample before any # TYPE"))?;
            let suffixes = [
                "", "_total", "_created", "_bucket", "_count", "_sum", "_info",
            ];
            if !suffixes
                .iter()
                .any(|s| sample.name.strip_suffix(s) == Some(family))
            {
                return Err(at(&format!("sample outside its family {family}")));
            }
            scrape.samples.push(sample);
        }
        if !ended {
            return Err("no # EOF at the end".to_owned());
        }
        Ok(scrape)
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum of the samples [`Scrape::matching`] finds, `None` when none does.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.matching(name, labels).peekable();
        found.peek()?;
        Some(found.map(|s| s.value).sum())
    }

    /// Whether a family of this name was exposed with at least one sample.
    pub fn has(&self, family: &str) -> bool {
        self.families.contains_key(family)
            && self.samples.iter().any(|s| {
                s.name == family
                    || s.name
                        .strip_prefix(family)
                        .is_some_and(|rest| rest.starts_with('_'))
            })
    }

    /// Every value label `label` takes in samples named `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .matching(name, &[])
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> std::result::Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let (name, mut rest) = line.split_at(name_end);
    if !valid_name(name) {
        return Err("bad sample name".to_owned());
    }
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(inner)?;
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    // An optional timestamp, nothing more (the services write no exemplars).
    if let Some(t) = fields.next() {
        t.parse::<f64>()
            .map_err(|_| format!("bad timestamp {t:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `key="value",...}` and what follows the `}`.
fn parse_labels(mut text: &str) -> std::result::Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    if let Some(after) = text.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let (key, after) = text.split_once("=\"").ok_or("a label without =\"")?;
        if !valid_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".to_owned()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("bad escape in a label value".to_owned()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        text = &after[end + 1..];
        if let Some(next) = text.strip_prefix(',') {
            text = next;
        } else if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        } else {
            return Err("expected , or } after a label".to_owned());
        }
    }
}

/// `promtool check metrics` on `text` (the Prometheus text format, which
/// is what promtool reads), when promtool is installed: `None` without it,
/// else its verdict (its complaints on failure).
pub fn promtool_check(text: &str) -> Option<std::result::Result<(), String>> {
    let promtool = crate::which("promtool")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .ok()?;
    let output = child.wait_with_output().ok()?;
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}

/// What Prometheus asks for in its `Accept` header (2.42's default).
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET http://{addr}/metrics` as Prometheus asks for it: its
/// `Content-Type` and body.
pub async fn scrape(addr: std::net::SocketAddr) -> crate::Result<(String, String)> {
    scrape_accepting(addr, PROMETHEUS_ACCEPT).await
}

/// `GET http://{addr}/metrics` with `Accept: {accept}`.
pub async fn scrape_accepting(
    addr: std::net::SocketAddr,
    accept: &str,
) -> crate::Result<(String, String)> {
    let response = crate::http_client()?
        .get(format!("http://{addr}/metrics"))
        .header("accept", accept)
        .send()
        .await
        .map_err(crate::Error::HttpClient)?;
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.map_err(crate::Error::HttpClient)?;
    Ok((content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposition_is_parsed_and_a_broken_one_named() {
        let text = "# HELP requests Requests.\n# TYPE requests counter\n\
                    requests_total{route=\"/a/{id}\",code=\"200\"} 3\n\
                    requests_total{route=\"other\",code=\"404\"} 1.5\n\
                    # TYPE up gauge\nup 1\n# EOF\n";
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(scrape.families["requests"], "counter");
        assert_eq!(scrape.value("requests_total", &[]), Some(4.5));
        assert_eq!(
            scrape.value("requests_total", &[("route", "/a/{id}")]),
            Some(3.0)
        );
        assert_eq!(scrape.value("up", &[]), Some(1.0));
        assert!(scrape.has("requests") && !scrape.has("down"));
        for broken in [
            "# TYPE up gauge\nup 1\n",
            "up 1\n# EOF\n",
            "# TYPE up gauge\nup{a=\"1} 1\n# EOF\n",
            "# TYPE up gauge\ndown 1\n# EOF\n",
            "# TYPE up gauge\nup one\n# EOF\n",
            "# TYPE up gauge\n# EOF\nup 1\n",
        ] {
            assert!(Scrape::parse(broken).is_err(), "{broken}");
        }
    }
}
