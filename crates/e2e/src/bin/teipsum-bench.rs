//! Benchmarks against the real stack (`teipsum dev`'s code), printed as figures.
//!
//! ```sh
//! teipsum-bench catalog [--seconds 10] [--connections 32]
//! teipsum-bench orders  [--rate 300] [--seconds 20]
//! ```
//!
//! `catalog` loads a product page and a list page with `wrk`, directly and
//! through nginx, next to a trivial upstream behind the same nginx in the
//! same run. `orders` places orders at a sustained rate and measures, from
//! the databases' own timestamps, how long each took from placed to
//! confirmed, and where that time went.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use teipsum_e2e::{ExtraRoute, Shop, start_with};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("catalog") => catalog(arg("--seconds", 10), arg("--connections", 32)).await,
        Some("orders") => orders(arg("--rate", 300), arg("--seconds", 20)).await,
        _ => {
            eprintln!("usage: teipsum-bench catalog [--seconds N] [--connections N]");
            eprintln!("       teipsum-bench orders [--rate N] [--seconds N]");
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

async fn catalog(seconds: u64, connections: u64) {
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
        std::thread::available_parallelism().map_or(0, |n| n.get())
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
}

async fn orders(rate: u64, seconds: u64) {
    let stack = start_with("prod", None, vec![]);
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
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let s = shop
            .call(
                Method::PUT,
                &format!("/api/admin/inventory/{id}"),
                Some(&admin),
                Some(json!({"quantity": 1_000_000})),
            )
            .await;
        assert_eq!(s.status(), StatusCode::OK);
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
    let warmup = stack
        .postgres
        .psql("teipsum_order", "SELECT count(*) FROM orders")
        .unwrap()
        .parse::<i64>()
        .unwrap();
    println!(
        "orders benchmark: {rate} orders/s for {seconds} s through nginx (HTTPS, HTTP/2), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        ticker.tick().await;
        let shop = shop.clone();
        let token = buyers[n as usize % buyers.len()].clone();
        let product = products[n as usize % products.len()].clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = shop
                .call(
                    Method::POST,
                    "/api/orders/",
                    Some(&token),
                    Some(json!({"items": [{"product_id": product, "quantity": 1}]})),
                )
                .await;
            (r.status(), sent.elapsed())
        }));
    }
    let offered = started.elapsed();
    let mut post_latency = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (status, elapsed) = t.await.unwrap();
        if status == StatusCode::CREATED {
            post_latency.push(elapsed.as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    // Drain: every order must leave PLACED.
    let drain = Instant::now();
    let count = |sql: &str| {
        stack
            .postgres
            .psql("teipsum_order", sql)
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    while count("SELECT count(*) FROM orders WHERE status = 'PLACED'") > 0
        && drain.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let placed = count("SELECT count(*) FROM orders") - warmup;
    let confirmed = count("SELECT count(*) FROM orders WHERE status = 'CONFIRMED'") - warmup;
    let stuck = count("SELECT count(*) FROM orders WHERE status = 'PLACED'");
    let stats = stack
        .postgres
        .psql(
            "teipsum_order",
            &format!(
                "WITH o AS (SELECT created_at, updated_at FROM orders WHERE status = 'CONFIRMED' ORDER BY created_at OFFSET {warmup}) \
                 SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)) * 1000)::numeric, 1), \
                        round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)) * 1000)::numeric, 1), \
                        round(count(*) / extract(epoch FROM max(updated_at) - min(created_at))::numeric, 1) FROM o"
            ),
        )
        .unwrap();
    let parts: Vec<&str> = stats.split('|').collect();
    post_latency.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "offered          {total} orders in {:.1} s ({:.0}/s)",
        offered.as_secs_f64(),
        total as f64 / offered.as_secs_f64()
    );
    println!(
        "POST /api/orders p50 {:.1} ms, p99 {:.1} ms, {failed} failed",
        pct(&post_latency, 0.5),
        pct(&post_latency, 0.99)
    );
    println!("placed→confirmed p50 {} ms, p99 {} ms", parts[0], parts[1]);
    println!(
        "confirmed        {confirmed} of {placed} placed; {stuck} never reached a final state; {:.1} orders/s placed→confirmed",
        parts[2].parse::<f64>().unwrap_or(0.0)
    );

    // Where the time goes: each hop from the databases' own timestamps.
    let hops = hop_breakdown(&stack);
    for (hop, p50, p99) in hops {
        println!("  {hop:<44} p50 {p50:>7.1} ms  p99 {p99:>7.1} ms");
    }
    let losses = failed + stuck;
    println!("losses           {losses}");
    stack.stop();
}

/// p50/p99 of each hop of the saga, in milliseconds.
fn hop_breakdown(stack: &teipsum_dev::Stack) -> Vec<(&'static str, f64, f64)> {
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
            "SELECT event_id, {}, {} FROM kit_outbox WHERE topic = 'order-events'",
            epoch("created_at"),
            epoch("sent_at")
        ),
    );
    let applied_inv = rows(
        "teipsum_inventory",
        &format!(
            "SELECT event_id, {} FROM kit_processed_events WHERE consumer = 'inventory'",
            epoch("processed_at")
        ),
    );
    // stock-reserved: written and relayed by inventory, applied by order.
    let reserved = rows(
        "teipsum_inventory",
        &format!(
            "SELECT event_id, {}, {} FROM kit_outbox WHERE payload->>'type' = 'stock-reserved'",
            epoch("created_at"),
            epoch("sent_at")
        ),
    );
    let applied_ord = rows(
        "teipsum_order",
        &format!(
            "SELECT event_id, {} FROM kit_processed_events WHERE consumer = 'order'",
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
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let pct = |p: f64| {
                v.get(((v.len() as f64 - 1.0) * p) as usize)
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            (name, pct(0.5), pct(0.99))
        })
        .collect()
}
