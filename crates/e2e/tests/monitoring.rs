//! Monitoring, for real: Debian's Prometheus, Alertmanager and exporters,
//! configured by `teipsum dev` from the same plan as the NixOS module,
//! against the whole stack. Every target is up, every rule evaluates, every
//! dashboard and alert expression reads series that exist, and breaking
//! the stack fires the right alert to a webhook receiver: a stopped
//! service, `TeipsumTargetDown`; inventory's consumer blocked on a lock
//! while orders arrive, `TeipsumConsumerLagHigh` and
//! `TeipsumConsumerStalled`. All resolve when the stack is mended.
//!
//! What this test changes, and why: the lag threshold is 3 events and the
//! stalled-consumer threshold 10 s (spec overrides, as an operator would
//! write them), and the three rules it fires hold for 10 s instead of
//! their generated minutes, so that the test takes a minute; Prometheus
//! scrapes every 2 s and Alertmanager sends at once. The generated holds themselves are proven by
//! `promtool test rules` (crates/nixgen/tests/alerts.rs).

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::Value;
use teipsum_dev::{MonitoringOptions, RULES_LEFT_OUT, Stack};
use teipsum_e2e::{Shop, TableLock, options, root};
use teipsum_spec::Plan;

/// Series no development stack has, each with why; an expression that
/// reads one may come back empty here (the rules among them are not even
/// loaded: [`RULES_LEFT_OUT`]).
const ABSENT_HERE: [(&str, &str); 2] = [
    (
        "kminion_",
        "Debian has no kminion (the broker's view of the lag)",
    ),
    (
        "pg_replication_lag_seconds",
        "Debian's PostgreSQL exporter 0.11 has no replication collector; nixpkgs' has",
    ),
];

/// The alerts Alertmanager posted, as the webhook received them.
struct Webhook {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    /// A receiver on a free loopback port, answering every POST with 200.
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_post(stream) {
                    kept.lock().unwrap().push(body);
                }
            }
        });
        Webhook { url, received }
    }

    /// The alerts received so far: (alertname, status, labels).
    fn alerts(&self) -> Vec<(String, String, Value)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    a["status"].as_str().unwrap_or("").to_owned(),
                    a["labels"].clone(),
                )
            })
            .collect()
    }

    /// Wait until an alert named `name` with `labels` arrives as `status`.
    async fn until(&self, name: &str, status: &str, labels: &[(&str, &str)], within: Duration) {
        let started = Instant::now();
        loop {
            let found = self.alerts().into_iter().any(|(n, s, l)| {
                n == name && s == status && labels.iter().all(|(k, v)| l[*k] == *v)
            });
            if found {
                eprintln!(
                    "{name} {status} {labels:?} after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            assert!(
                started.elapsed() < within,
                "no {name} {status} {labels:?} within {within:?}; received: {:#?}",
                self.alerts()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One HTTP request's JSON body; the connection is answered and closed.
fn read_post(mut stream: TcpStream) -> Option<Value> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    serde_json::from_slice(&body).ok()
}

/// config.ncl's `prod` with a lag threshold of 3 and a 10 s
/// stalled-consumer threshold, and the rules the test fires holding 10 s.
fn plan() -> Plan {
    let dir = std::env::temp_dir().join(format!("teipsum-e2e-monitoring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("spec.ncl");
    std::fs::write(
        &spec,
        format!(
            "(import \"{}\") & {{\n  environments.prod.monitoring.alerts.consumer_stalled | force = \"10s\",\n  environments.prod.monitoring.alerts.consumer_lag | force = 3,\n}}\n",
            root().join("config.ncl").display()
        ),
    )
    .unwrap();
    let mut plan = teipsum_spec::load_spec(&spec)
        .unwrap_or_else(|e| panic!("the test's spec: {e}"))
        .plans["prod"]
        .clone();
    let _ = std::fs::remove_dir_all(&dir);
    let monitoring = plan.monitoring.as_mut().expect("prod is monitored");
    for rule in monitoring.rules.iter_mut().flat_map(|g| g.rules.iter_mut()) {
        if [
            "TeipsumTargetDown",
            "TeipsumConsumerStalled",
            "TeipsumConsumerLagHigh",
        ]
        .contains(&rule.alert.as_str())
        {
            rule.hold = "10s".to_owned();
        }
    }
    plan
}

/// Prometheus's HTTP API.
struct Prometheus {
    http: reqwest::Client,
    base: String,
}

impl Prometheus {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url =
            reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query).expect("a URL");
        let r = self.http.get(url).send().await.expect("Prometheus answers");
        let body: Value = r.json().await.expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// The result of an instant query (an error fails the test).
    async fn query(&self, expr: &str) -> Vec<Value> {
        self.get("/api/v1/query", &[("query", expr)]).await["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Poll `check` every 500 ms until it returns `None` (done) or `within`
    /// ends; its `Some(why)` is the failure then.
    async fn until<F, Fut>(&self, what: &str, within: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<String>>,
    {
        let started = Instant::now();
        loop {
            match check().await {
                None => return,
                Some(why) if started.elapsed() > within => {
                    panic!("{what} within {within:?}: {why}")
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// The metric names an expression reads: identifiers outside label
/// matchers, label lists and strings that are not PromQL's own words.
fn metrics_read(expr: &str) -> BTreeSet<String> {
    // Words followed by a list of label names.
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const WORDS: [&str; 29] = [
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "topk",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "rate",
        "delta",
        "increase",
        "histogram_quantile",
        "predict_linear",
        "absent",
        "time",
        "bool",
        "offset",
        "vector",
        "scalar",
        "clamp_min",
        "label_replace",
        "irate",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // A string: skip to its closing quote.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' {
            let close = if c == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        } else if c == '(' && after_grouping {
            // `by (service, topic)`: label names, not metrics.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            i += 1;
            after_grouping = false;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            after_grouping = GROUPING.contains(&word.as_str());
            if !WORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            if !c.is_whitespace() {
                after_grouping = false;
            }
            i += 1;
        }
    }
    names
}

#[test]
fn metrics_read_finds_the_metrics_and_nothing_else() {
    let names = metrics_read(
        "sum by (service, topic) (teipsum_consumer_lag{topic=\"a b\"}) > 1000\nand\nsum by (service) (delta(teipsum_consumer_lag[10m])) > 0 or absent(up{job=\"x\"}) / on (instance) node_memory_MemAvailable_bytes",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "node_memory_MemAvailable_bytes",
            "teipsum_consumer_lag",
            "up"
        ]
    );
}

/// Why `metric` may be missing here, if it may.
fn absent_here(metric: &str) -> Option<&'static str> {
    ABSENT_HERE
        .iter()
        .chain(RULES_LEFT_OUT.iter())
        .find(|(prefix, _)| metric.starts_with(prefix))
        .map(|(_, why)| *why)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_stack_and_alertmanager_delivers_what_breaks_it() {
    let plan = plan();
    let monitoring_plan = plan.monitoring.clone().expect("prod is monitored");
    let webhook = Webhook::start();
    let mut options = options(&plan, None, vec![]);
    options.monitoring = MonitoringOptions {
        disable: false,
        webhook: Some(webhook.url.clone()),
        // Every 2 s: a scrape may take that long (Prometheus's timeout is
        // the interval) while the two cores run the other tests as well.
        interval: Some("2s".to_owned()),
        quick: true,
    };
    let stack = Stack::start(&plan, &options)
        .unwrap_or_else(|e| panic!("the stack does not start: {}", teipsum_dev::chain(&e)));
    let monitoring = stack
        .monitoring
        .as_ref()
        .expect("Prometheus runs beside the stack (scripts/setup.sh installs Debian's)");
    let left_out: Vec<&str> = monitoring
        .left_out
        .iter()
        .map(|(j, _)| j.as_str())
        .collect();
    assert_eq!(
        left_out,
        ["kafka (kminion)"],
        "every exporter Debian has runs"
    );
    let prometheus = Prometheus {
        http: teipsum_testkit::http_client().expect("an HTTP client"),
        base: monitoring.prometheus_url.clone(),
    };

    // Some of everything the dashboards show: logins, products, stock,
    // orders confirmed and rejected, the storefront.
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let ana = shop.account("ana@example.org").await;
    let mug = shop
        .create_product(&admin, "Watched Mug", "W-MUG", 1_200)
        .await;
    shop.set_stock(&admin, &mug, 3).await;
    assert_eq!(
        shop.order_decided(&ana, &mug, 2).await["status"],
        "CONFIRMED"
    );
    assert_eq!(
        shop.order_decided(&ana, &mug, 5).await["status"],
        "REJECTED"
    );
    let page = shop.call(Method::GET, "/", None, None).await;
    assert!(page.status().is_success());

    // Every target of the plan's jobs (kminion's aside) is up.
    let expected: usize = monitoring_plan
        .scrape
        .iter()
        .filter(|job| job.job != "kafka")
        .map(|job| job.targets.len())
        .sum();
    prometheus
        .until("every target up", Duration::from_secs(60), || async {
            let targets = prometheus.get("/api/v1/targets", &[]).await["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let down: Vec<String> = targets
                .iter()
                .filter(|t| t["health"] != "up")
                .map(|t| {
                    format!(
                        "{} {} {}",
                        t["labels"]["job"], t["scrapeUrl"], t["lastError"]
                    )
                })
                .collect();
            (targets.len() != expected || !down.is_empty())
                .then(|| format!("{} of {expected} targets, down: {down:?}", targets.len()))
        })
        .await;

    // Every rule loaded and evaluated without error; those left out are
    // exactly those reading what a development machine lacks.
    let left_out_rules: BTreeSet<&str> = monitoring
        .rules_left_out
        .iter()
        .map(|(r, _)| r.as_str())
        .collect();
    assert_eq!(
        left_out_rules,
        BTreeSet::from([
            "TeipsumUnitFailed",
            "TeipsumBackupTooOld",
            "TeipsumCertificateExpiring"
        ])
    );
    let wanted: BTreeSet<String> = monitoring_plan
        .rules
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| r.alert.clone()))
        .filter(|r| !left_out_rules.contains(r.as_str()))
        .collect();
    prometheus
        .until(
            "every rule evaluated and healthy",
            Duration::from_secs(30),
            || async {
                let groups = prometheus.get("/api/v1/rules", &[]).await["groups"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let rules: Vec<Value> = groups
                    .iter()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect();
                let names: BTreeSet<String> = rules
                    .iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_owned))
                    .collect();
                let unhealthy: Vec<String> = rules
                    .iter()
                    .filter(|r| r["health"] != "ok")
                    .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
                    .collect();
                (names != wanted || !unhealthy.is_empty())
                    .then(|| format!("loaded {names:?}, unhealthy {unhealthy:?}"))
            },
        )
        .await;

    // Every dashboard expression returns data, unless it reads what this
    // machine cannot have.
    let dashboards = &monitoring_plan
        .grafana
        .as_ref()
        .expect("prod has Grafana")
        .dashboards;
    let exprs: Vec<(String, String)> = dashboards
        .iter()
        .flat_map(|d| d.panels.iter().map(move |p| (d, p)))
        .filter(|(_, p)| p.datasource == "teipsum-prometheus")
        .flat_map(|(d, p)| {
            p.queries
                .iter()
                .map(move |q| (format!("{} / {}", d.title, p.title), q.expr.clone()))
        })
        .collect();
    assert!(exprs.len() > 30, "{} dashboard queries", exprs.len());
    prometheus
        .until(
            "every dashboard query with data",
            Duration::from_secs(60),
            || async {
                // Requests in every window: a rate is 0, and the 5xx share
                // empty, when a series has not grown since its first sample.
                let _ = shop.call(Method::GET, "/api/products", None, None).await;
                let _ = shop.call(Method::GET, "/", None, None).await;
                let mut empty = Vec::new();
                for (panel, expr) in &exprs {
                    let allowed = metrics_read(expr).iter().find_map(|m| absent_here(m));
                    if prometheus.query(expr).await.is_empty() && allowed.is_none() {
                        empty.push(format!("{panel}: {expr}"));
                    }
                }
                (!empty.is_empty()).then(|| format!("no data: {empty:#?}"))
            },
        )
        .await;

    // Every alert expression (those left out too) is valid against the real
    // series, and every metric it reads exists; a healthy stack fires none.
    for rule in monitoring_plan.rules.iter().flat_map(|g| &g.rules) {
        let _ = prometheus.query(&rule.expr).await;
        for metric in metrics_read(&rule.expr) {
            if absent_here(&metric).is_some() {
                continue;
            }
            let series = prometheus
                .query(&format!("count({{__name__=\"{metric}\"}})"))
                .await;
            assert!(!series.is_empty(), "{}: no series {metric}", rule.alert);
        }
    }
    let firing: Vec<Value> = prometheus.get("/api/v1/alerts", &[]).await["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["state"] == "firing")
        .collect();
    assert!(firing.is_empty(), "a healthy stack fires {firing:#?}");

    // Break two things: stop the catalog, and hold inventory's stock table
    // so that its consumer waits on the lock with an order to reserve.
    shop.set_stock(&admin, &mug, 100).await;
    stack.service("catalog").stop();
    let inventory = stack
        .plan
        .service("inventory")
        .expect("inventory")
        .database
        .clone();
    let lock = TableLock::take(&stack, &inventory, "inventory.inventory");
    let held = shop.place_order(&ana, &mug, 1).await;
    // Three more behind it, all waiting for inventory: its lag is 4
    // (`max_open_orders` is 5).
    let mut waiting = vec![held.clone()];
    for _ in 0..3 {
        waiting.push(shop.place_order(&ana, &mug, 1).await);
    }
    // The 10 s holds, and scrapes and evaluations every 2 s, on a busy machine.
    let within = Duration::from_secs(120);
    webhook
        .until(
            "TeipsumTargetDown",
            "firing",
            &[("job", "services"), ("service", "catalog")],
            within,
        )
        .await;
    webhook
        .until(
            "TeipsumConsumerStalled",
            "firing",
            &[("service", "inventory")],
            within,
        )
        .await;
    webhook
        .until(
            "TeipsumConsumerLagHigh",
            "firing",
            &[("service", "inventory"), ("topic", "order-events")],
            within,
        )
        .await;

    // Mended, everything resolves, and the held orders go through.
    drop(lock);
    stack
        .service("catalog")
        .start()
        .expect("catalog starts again");
    webhook
        .until(
            "TeipsumConsumerStalled",
            "resolved",
            &[("service", "inventory")],
            within,
        )
        .await;
    webhook
        .until(
            "TeipsumTargetDown",
            "resolved",
            &[("service", "catalog")],
            within,
        )
        .await;
    webhook
        .until(
            "TeipsumConsumerLagHigh",
            "resolved",
            &[("service", "inventory")],
            within,
        )
        .await;

    for order in &waiting {
        let id = order["id"].as_str().unwrap();
        let decided = shop
            .until(
                &format!("/api/orders/{id}"),
                Some(&ana),
                "a held order",
                |_, b| b["status"] != "PLACED",
            )
            .await;
        assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    }
    stack.stop();
}
