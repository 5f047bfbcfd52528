//! Benchmarks against the real stack (`teipsum dev`'s code), printed as figures.
//!
//! ```sh
//! teipsum-bench catalog [--seconds 10] [--connections 32]
//! teipsum-bench orders  [--rate 300] [--seconds 20] [--batch N]
//! teipsum-bench orders  --find-capacity [--from 200] [--step 100] [--seconds 10] [--budget-ms 250]
//! teipsum-bench all     every figure of the README's table, in one run
//! ```
//!
//! `catalog` loads a product page and a list page with `wrk`, directly and
//! through nginx, next to a trivial upstream behind the same nginx in the
//! same run. `orders` places orders at a sustained rate and measures, from
//! the databases' own timestamps, how long each took from placed to
//! confirmed, and where that time went; `--find-capacity` raises the rate
//! step by step until a run misses the budget (p99 placed → confirmed, 95 %
//! of the offered rate confirmed, nothing lost) and prints the highest rate
//! that held. The orders stack lifts the per-customer caps that protect the
//! shop from one hoarder (nginx's placement rate limit per address and
//! `max_open_orders`): the load generator is one address and a few
//! customers. Everything else is config.ncl's `prod`; `--batch N` sets the
//! consumers' `consumer_batch` (inventory's, order's and catalog's) to N.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use teipsum_e2e::{ExtraRoute, Shop, start_spec, start_with};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

#[tokio::main]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("catalog") => {
            catalog(arg("--seconds", 10), arg("--connections", 32)).await;
        }
        Some("orders") if flag("--find-capacity") => {
            let bench = OrderBench::start(arg("--batch", 0)).await;
            let budget = Budget::new(arg("--budget-ms", 250));
            find_capacity(
                &bench,
                arg("--from", 200),
                arg("--step", 100),
                arg("--seconds", 10),
                &budget,
            )
            .await;
            bench.stack.stop();
        }
        Some("orders") => {
            let bench = OrderBench::start(arg("--batch", 0)).await;
            bench.run(arg("--rate", 300), arg("--seconds", 20)).await;
            bench.stack.stop();
        }
        Some("all") => all(arg("--seconds", 20)).await,
        _ => {
            eprintln!("usage: teipsum-bench catalog [--seconds N] [--connections N]");
            eprintln!("       teipsum-bench orders [--rate N] [--seconds N]");
            eprintln!(
                "       teipsum-bench orders --find-capacity [--from N] [--step N] [--seconds N] [--budget-ms N]"
            );
            eprintln!("       teipsum-bench all [--seconds N]");
            std::process::exit(2);
        }
    }
}

/// A trivial upstream: a fixed JSON body of a product's size, no database.
async fn trivial_upstream() -> u16 {
    use warp::Filter;
    let body: &'static str = Box::leak(
        serde_json::to_string(&json!({
            "id": "00000000-0000-0000-0000-000000000000", "name": "Trivial", "description": "x".repeat(120),
            "sku": "TRIVIAL-1", "price": {"amount_minor": 100, "currency": "EUR"}, "category": "bench",
            "image_urls": [], "stock": {"status": "low_stock"}, "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
        .into_boxed_str(),
    );
    let route = warp::any().map(move || {
        warp::http::Response::builder()
            .header("content-type", "application/json")
            .body(body)
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    port
}

/// Figures of one wrk run.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, seconds: u64, connections: u64) -> Load {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .expect("wrk runs (apt-get install wrk; scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_default()
    };
    Load {
        rps: find("Requests/sec:").parse().unwrap_or(0.0),
        p50_ms: millis(&find("50%")),
        p99_ms: millis(&find("99%")),
        errors: [find("Non-2xx or 3xx responses:"), find("Socket errors:")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The catalog's figures that the summary repeats.
struct CatalogFigures {
    direct_rps: f64,
    uncached_rps: f64,
    uncached_ratio: f64,
    trivial_nginx_rps: f64,
    trivial_direct_rps: f64,
}

async fn catalog(seconds: u64, connections: u64) -> CatalogFigures {
    let trivial = trivial_upstream().await;
    // The trivial upstream, and the catalog without the micro-cache, behind
    // the same nginx: `/bench/catalog/api/...` is `/api/...`, uncached.
    let extra = vec![
        ExtraRoute {
            location: "/bench/trivial".to_owned(),
            target: format!("127.0.0.1:{trivial}"),
            uri: String::new(),
        },
        ExtraRoute {
            location: "/bench/catalog/".to_owned(),
            target: "catalog".to_owned(),
            uri: "/".to_owned(),
        },
    ];
    let stack = start_with("prod", None, extra);
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let r = shop
            .call(
                Method::POST,
                "/api/admin/products/",
                Some(&admin),
                Some(json!({"name": format!("Bench product {i}"), "description": "A product for the benchmark",
                            "sku": format!("BENCH-{i:03}"), "price": {"amount_minor": 1000 + i, "currency": "EUR"},
                            "category": "bench", "image_urls": [], "active": true})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let last = ids.last().unwrap().clone();
    shop.until(
        &format!("/api/products/{last}"),
        None,
        "the catalog to have the products",
        |s, _| s == StatusCode::OK,
    )
    .await;
    let catalog_port = stack.plan.service("catalog").unwrap().port;
    let product = &ids[0];
    let targets = [
        (
            "product, direct",
            format!("http://127.0.0.1:{catalog_port}/api/products/{product}"),
        ),
        (
            "product, via nginx",
            format!("{}/api/products/{product}", stack.https_base),
        ),
        (
            "product, nginx, no cache",
            format!("{}/bench/catalog/api/products/{product}", stack.https_base),
        ),
        (
            "list page, direct",
            format!("http://127.0.0.1:{catalog_port}/api/products?limit=20&category=bench"),
        ),
        (
            "list page, via nginx",
            format!("{}/api/products?limit=20&category=bench", stack.https_base),
        ),
        (
            "list, nginx, no cache",
            format!(
                "{}/bench/catalog/api/products?limit=20&category=bench",
                stack.https_base
            ),
        ),
        ("trivial, direct", format!("http://127.0.0.1:{trivial}/")),
        (
            "trivial, via nginx",
            format!("{}/bench/trivial", stack.https_base),
        ),
    ];
    println!(
        "catalog benchmark: wrk -t2 -c{connections} -d{seconds}s, {} cores",
        cores()
    );
    println!(
        "{:<26} {:>10} {:>9} {:>9}  errors",
        "target", "req/s", "p50 ms", "p99 ms"
    );
    let mut results = BTreeMap::new();
    for (name, url) in &targets {
        let load = wrk(url, seconds, connections);
        println!(
            "{name:<26} {:>10.0} {:>9.2} {:>9.2}  {}",
            load.rps, load.p50_ms, load.p99_ms, load.errors
        );
        results.insert(*name, load.rps);
    }
    let ratio = results["product, via nginx"] / results["trivial, via nginx"];
    println!(
        "product via nginx / trivial via nginx = {ratio:.2} (target ≥ 0.60): {}",
        if ratio >= 0.6 { "met" } else { "NOT met" }
    );
    let uncached = results["product, nginx, no cache"] / results["trivial, via nginx"];
    println!(
        "without the {}s micro-cache: product via nginx / trivial via nginx = {uncached:.2}",
        stack
            .plan
            .nginx
            .routes
            .iter()
            .find(|r| r.service == "catalog")
            .map_or(0, |r| r.micro_cache_secs)
    );
    stack.stop();
    CatalogFigures {
        direct_rps: results["product, direct"],
        uncached_rps: results["product, nginx, no cache"],
        uncached_ratio: uncached,
        trivial_nginx_rps: results["trivial, via nginx"],
        trivial_direct_rps: results["trivial, direct"],
    }
}

/// What a run of orders must hold to count as sustained.
struct Budget {
    p99_ms: f64,
}

impl Budget {
    fn new(p99_ms: u64) -> Self {
        Budget {
            p99_ms: p99_ms as f64,
        }
    }

    /// Why `run` missed the budget, if it did.
    fn missed(&self, run: &Run) -> Option<String> {
        if run.losses > 0 {
            return Some(format!("{} lost", run.losses));
        }
        // A run without a confirmed order has no p99 (NaN): missed too.
        if run.p99_ms.is_nan() || run.p99_ms > self.p99_ms {
            return Some(format!("p99 {:.0} ms > {:.0} ms", run.p99_ms, self.p99_ms));
        }
        if run.confirmed_rate < 0.95 * run.offered_rate {
            return Some(format!(
                "{:.1}/s confirmed < 95 % of {:.1}/s offered",
                run.confirmed_rate, run.offered_rate
            ));
        }
        None
    }
}

/// The figures of one run of orders.
struct Run {
    rate: u64,
    offered_rate: f64,
    confirmed_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    losses: i64,
}

/// A stack for the orders benchmark: products with plenty of stock, and
/// customers to place orders as.
struct OrderBench {
    stack: teipsum_dev::Stack,
    shop: Arc<Shop>,
    buyers: Vec<String>,
    products: Vec<String>,
    /// What the stack runs with besides config.ncl's `prod`.
    overrides: String,
}

/// What the orders stack changes in config.ncl's `prod` (see the module doc).
const ORDER_OVERRIDES: &str = "environments.prod.nginx.order_rate_limit.rate | force = \"1000000r/s\",\n  \
     environments.prod.nginx.order_rate_limit.burst | force = 1000000,\n  \
     services.order.order_limits.max_open_orders | force = 1000000000,";

impl OrderBench {
    /// The stack, with every consumer's `consumer_batch` at `batch` (0: the spec's).
    async fn start(batch: u64) -> OrderBench {
        let mut overrides = ORDER_OVERRIDES.to_owned();
        if batch > 0 {
            for service in ["inventory", "order", "catalog"] {
                overrides.push_str(&format!(
                    "\n  services.{service}.consumer_batch | force = {batch},"
                ));
            }
        }
        let dir = std::env::temp_dir().join(format!("teipsum-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let spec = dir.join("bench.ncl");
        std::fs::write(
            &spec,
            format!(
                "(import \"{}\") & {{\n  {overrides}\n}}\n",
                teipsum_e2e::root().join("config.ncl").display()
            ),
        )
        .expect("the bench spec is written");
        let stack = start_spec(&spec, "prod", None, vec![]);
        let shop = Arc::new(Shop::new(&stack));
        let admin = shop.admin().await;
        let mut products = Vec::new();
        for i in 0..5 {
            let r = shop
                .call(
                    Method::POST,
                    "/api/admin/products/",
                    Some(&admin),
                    Some(json!({"name": format!("Order bench {i}"), "description": "", "sku": format!("OBENCH-{i}"),
                                "price": {"amount_minor": 500, "currency": "EUR"}, "category": "bench", "image_urls": [], "active": true})),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let id = r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            // Inventory knows the product once its event arrived.
            let started = Instant::now();
            loop {
                let s = shop
                    .call(
                        Method::PUT,
                        &format!("/api/admin/inventory/{id}"),
                        Some(&admin),
                        Some(json!({"on_hand": 1_000_000})),
                    )
                    .await;
                if s.status() == StatusCode::OK {
                    break;
                }
                assert!(
                    s.status() == StatusCode::NOT_FOUND
                        && started.elapsed() < Duration::from_secs(60),
                    "setting the stock: {}",
                    s.status()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            products.push(id);
        }
        let mut buyers = Vec::new();
        for i in 0..8 {
            buyers.push(shop.account(&format!("buyer{i}@example.org")).await);
        }
        // Wait until the order service knows every product.
        for p in &products {
            loop {
                let r = shop
                    .call(
                        Method::POST,
                        "/api/orders/",
                        Some(&buyers[0]),
                        Some(json!({"items": [{"product_id": p, "quantity": 1}]})),
                    )
                    .await;
                if r.status() == StatusCode::CREATED {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let bench = OrderBench {
            stack,
            shop,
            buyers,
            products,
            overrides,
        };
        bench.drain(Duration::from_secs(60)).await;
        bench
    }

    fn sql(&self, db: &str, sql: &str) -> String {
        self.stack
            .postgres
            .psql(db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn count(&self, sql: &str) -> i64 {
        self.sql("teipsum_order", sql).parse().unwrap_or(-1)
    }

    /// Wait until no order is `PLACED` any more, or `limit` has passed.
    async fn drain(&self, limit: Duration) -> i64 {
        let started = Instant::now();
        loop {
            let placed = self.count("SELECT count(*) FROM orders WHERE status = 'PLACED'");
            if placed == 0 || started.elapsed() > limit {
                return placed;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Place `rate` orders a second for `seconds` and print what happened.
    async fn run(&self, rate: u64, seconds: u64) -> Run {
        let since = self.sql("teipsum_order", "SELECT now()::text");
        println!(
            "orders benchmark: {rate} orders/s for {seconds} s through nginx (HTTPS, HTTP/2), {} cores",
            cores()
        );
        println!(
            "  (config.ncl's prod, with: {})",
            self.overrides.replace("\n  ", " ")
        );
        let total = rate * seconds;
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for n in 0..total {
            ticker.tick().await;
            let shop = self.shop.clone();
            let token = self.buyers[n as usize % self.buyers.len()].clone();
            let product = self.products[n as usize % self.products.len()].clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                // A request that fails (a timeout, a reset) is a failed
                // order, not the end of the benchmark.
                let r = shop
                    .http
                    .post(format!("{}/api/orders/", shop.base))
                    .bearer_auth(&token)
                    .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
                    .send()
                    .await;
                let outcome = match r {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(e) if e.is_timeout() => "timeout".to_owned(),
                    Err(_) => "connection error".to_owned(),
                };
                (outcome, sent.elapsed())
            }));
        }
        let offered = started.elapsed();
        let mut post_latency = Vec::new();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for t in tasks {
            match t.await {
                Ok((outcome, elapsed)) if outcome == "201" => {
                    post_latency.push(elapsed.as_secs_f64() * 1000.0)
                }
                Ok((outcome, _)) => *failures.entry(outcome).or_default() += 1,
                Err(_) => *failures.entry("task failed".to_owned()).or_default() += 1,
            }
        }
        let failed: u64 = failures.values().sum();
        // Drain: every order must leave PLACED.
        let stuck = self.drain(Duration::from_secs(120)).await;
        let window = format!("created_at >= '{since}'");
        let placed = self.count(&format!("SELECT count(*) FROM orders WHERE {window}"));
        let confirmed = self.count(&format!(
            "SELECT count(*) FROM orders WHERE status = 'CONFIRMED' AND {window}"
        ));
        let stats = self.sql(
            "teipsum_order",
            &format!(
                "WITH o AS (SELECT created_at, updated_at FROM orders WHERE status = 'CONFIRMED' AND {window}) \
                 SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)) * 1000)::numeric, 1), \
                        round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)) * 1000)::numeric, 1), \
                        round(count(*) / nullif(extract(epoch FROM max(updated_at) - min(created_at)), 0)::numeric, 1) FROM o"
            ),
        );
        let parts: Vec<f64> = stats
            .split('|')
            .map(|p| p.trim().parse().unwrap_or(f64::NAN))
            .chain(std::iter::repeat(f64::NAN))
            .take(3)
            .collect();
        post_latency.sort_by(f64::total_cmp);
        let offered_rate = total as f64 / offered.as_secs_f64();
        println!(
            "offered          {total} orders in {:.1} s ({offered_rate:.0}/s)",
            offered.as_secs_f64(),
        );
        println!(
            "POST /api/orders p50 {:.1} ms, p99 {:.1} ms, {failed} failed {}",
            percentile(&post_latency, 0.5),
            percentile(&post_latency, 0.99),
            if failures.is_empty() {
                String::new()
            } else {
                format!("{failures:?}")
            }
        );
        println!(
            "placed→confirmed p50 {:.1} ms, p99 {:.1} ms",
            parts[0], parts[1]
        );
        println!(
            "confirmed        {confirmed} of {placed} placed; {stuck} never reached a final state; {:.1} orders/s placed→confirmed",
            parts[2]
        );
        // Where the time goes: each hop from the databases' own timestamps.
        for (hop, p50, p99) in hop_breakdown(&self.stack, &since) {
            println!("  {hop:<44} p50 {p50:>7.1} ms  p99 {p99:>7.1} ms");
        }
        let losses = failed as i64 + stuck;
        println!("losses           {losses}");
        Run {
            rate,
            offered_rate,
            confirmed_rate: if parts[2].is_finite() { parts[2] } else { 0.0 },
            p50_ms: parts[0],
            p99_ms: parts[1],
            losses,
        }
    }

    /// Resident memory of each service, in MB.
    fn rss(&self) -> Vec<(String, f64)> {
        self.stack
            .plan
            .services
            .iter()
            .map(|s| {
                let kb = self
                    .stack
                    .service(&s.name)
                    .pid()
                    .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
                    .and_then(|status| {
                        status.lines().find_map(|l| {
                            l.strip_prefix("VmRSS:").and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
                            })
                        })
                    })
                    .unwrap_or(f64::NAN);
                (s.name.clone(), kb / 1024.0)
            })
            .collect()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Raise the offered rate by `step` from `from` until a run misses
/// `budget`; returns the highest rate that held (0 if none did).
async fn find_capacity(
    bench: &OrderBench,
    from: u64,
    step: u64,
    seconds: u64,
    budget: &Budget,
) -> Option<Run> {
    let mut held: Option<Run> = None;
    let mut rate = from.max(1);
    loop {
        let run = bench.run(rate, seconds).await;
        let missed = budget.missed(&run);
        println!(
            "capacity step    {rate}/s: {}\n",
            missed.as_deref().unwrap_or("held")
        );
        // Let a missed run's queue empty before the verdict is printed.
        bench.drain(Duration::from_secs(120)).await;
        if missed.is_some() {
            break;
        }
        held = Some(run);
        rate += step.max(1);
    }
    match &held {
        Some(run) => println!(
            "saga capacity    {}/s held (p99 {:.0} ms ≤ {:.0} ms, {:.1}/s confirmed, 0 lost), {} cores",
            run.rate,
            run.p99_ms,
            budget.p99_ms,
            run.confirmed_rate,
            cores()
        ),
        None => println!("saga capacity    not even {from}/s held"),
    }
    held
}

/// Every figure of the README's table in one run.
async fn all(seconds: u64) {
    let catalog = catalog(10, 32).await;
    let bench = OrderBench::start(0).await;
    // Idle: before any load, after the stack settled.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = bench.rss();
    let at_300 = bench.run(300, seconds).await;
    bench.drain(Duration::from_secs(120)).await;
    let at_700 = bench.run(700, seconds).await;
    bench.drain(Duration::from_secs(120)).await;
    let at_1000 = bench.run(1000, seconds).await;
    bench.drain(Duration::from_secs(120)).await;
    let budget = Budget::new(250);
    let capacity = find_capacity(&bench, 200, 100, 10, &budget).await;
    bench.stack.stop();
    println!();
    println!("summary, {} cores", cores());
    println!("| figure | value |");
    println!("|---|---|");
    for run in [&at_300, &at_700, &at_1000] {
        println!(
            "| orders offered at {}/s for {seconds} s | {:.1}/s confirmed, p50 {:.0} ms, p99 {:.0} ms, {} lost |",
            run.rate, run.confirmed_rate, run.p50_ms, run.p99_ms, run.losses
        );
    }
    println!(
        "| saga capacity (p99 ≤ 250 ms, 10 s steps of 100/s) | {} |",
        capacity.map_or("none held".to_owned(), |r| format!(
            "{}/s (p99 {:.0} ms)",
            r.rate, r.p99_ms
        ))
    );
    println!(
        "| product read through nginx, micro-cache bypassed | {:.0} req/s = {:.2} of a trivial upstream ({:.0}) |",
        catalog.uncached_rps, catalog.uncached_ratio, catalog.trivial_nginx_rps
    );
    println!(
        "| product read, service direct | {:.0} req/s (trivial direct {:.0}) |",
        catalog.direct_rps, catalog.trivial_direct_rps
    );
    println!(
        "| idle RSS per service | {} |",
        rss.iter()
            .map(|(name, mb)| format!("{name} {mb:.1} MB"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// p50/p99 of each hop of the saga, in milliseconds.
fn hop_breakdown(stack: &teipsum_dev::Stack, since: &str) -> Vec<(&'static str, f64, f64)> {
    let rows = |db: &str, sql: &str| -> BTreeMap<String, Vec<f64>> {
        let mut map: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for line in stack.postgres.psql(db, sql).unwrap().lines() {
            let fields: Vec<&str> = line.split('|').collect();
            map.insert(
                fields[0].to_owned(),
                fields[1..]
                    .iter()
                    .map(|f| f.parse().unwrap_or(f64::NAN))
                    .collect(),
            );
        }
        map
    };
    let epoch = |col: &str| format!("extract(epoch FROM {col}) * 1000");
    // order-placed: written and relayed by order, applied by inventory.
    let placed = rows(
        "teipsum_order",
        &format!(
            "SELECT event_id, {}, {} FROM kit_outbox WHERE topic = 'order-events' AND created_at >= '{since}'",
            epoch("created_at"),
            epoch("sent_at")
        ),
    );
    let applied_inv = rows(
        "teipsum_inventory",
        &format!(
            "SELECT event_id, {} FROM kit_processed_events WHERE consumer = 'inventory' AND processed_at >= '{since}'",
            epoch("processed_at")
        ),
    );
    // stock-reserved: written and relayed by inventory, applied by order.
    let reserved = rows(
        "teipsum_inventory",
        &format!(
            "SELECT event_id, {}, {} FROM kit_outbox WHERE payload->>'type' = 'stock-reserved' AND created_at >= '{since}'",
            epoch("created_at"),
            epoch("sent_at")
        ),
    );
    let applied_ord = rows(
        "teipsum_order",
        &format!(
            "SELECT event_id, {} FROM kit_processed_events WHERE consumer = 'order' AND processed_at >= '{since}'",
            epoch("processed_at")
        ),
    );
    let mut hops: Vec<(&'static str, Vec<f64>)> = vec![
        ("order outbox → broker (order relay)", vec![]),
        ("broker → inventory applied the reservation", vec![]),
        ("inventory outbox → broker (inventory relay)", vec![]),
        ("broker → order applied the confirmation", vec![]),
    ];
    for (id, times) in &placed {
        hops[0].1.push(times[1] - times[0]);
        if let Some(applied) = applied_inv.get(id) {
            hops[1].1.push(applied[0] - times[1]);
        }
    }
    for (id, times) in &reserved {
        hops[2].1.push(times[1] - times[0]);
        if let Some(applied) = applied_ord.get(id) {
            hops[3].1.push(applied[0] - times[1]);
        }
    }
    hops.into_iter()
        .map(|(name, mut v)| {
            v.retain(|x| x.is_finite());
            v.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                v.get(((v.len() as f64 - 1.0) * p) as usize)
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            (name, pct(0.5), pct(0.99))
        })
        .collect()
}
