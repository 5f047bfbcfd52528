//! The whole platform, started by `teipsum dev`'s own code, driven only
//! through nginx over HTTPS: PostgreSQL, tansu, the six service binaries
//! and nginx with the configuration rendered from config.ncl.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use teipsum_e2e::{Shop, product_body, start};

/// Wait until inventory has `quantity` units of `product` available and the
/// catalog shows its coarse status, which is all shoppers see.
async fn stock_is(shop: &Shop, admin: &str, product: &str, quantity: i64) -> Value {
    shop.until(
        &format!("/api/admin/inventory/{product}"),
        Some(admin),
        &format!("inventory to count {quantity} available"),
        |s, b| s == StatusCode::OK && b["quantity"] == quantity,
    )
    .await;
    let status = match quantity {
        0 => "out_of_stock",
        1..=5 => "low_stock",
        _ => "in_stock",
    };
    stock_status_in_catalog(shop, product, status).await
}

async fn stock_status_in_catalog(shop: &Shop, product: &str, status: &str) -> Value {
    let shown = shop
        .until(
            &format!("/api/products/{product}"),
            None,
            &format!("the catalog to show {product} {status}"),
            |s, b| s == StatusCode::OK && b["stock"]["status"] == status,
        )
        .await;
    assert_eq!(
        shown["stock"],
        json!({"status": status}),
        "no count is shown"
    );
    shown
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shopper_buys_a_mug_and_changes_her_mind() {
    let stack = start("prod", None);
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let ana = shop.account("ana@example.org").await;

    let mug = shop
        .create_product(&admin, "Blue Mug", "MUG-BLUE-1", 1_450)
        .await;
    let teapot = shop
        .create_product(&admin, "Iron Teapot", "TEAPOT-1", 5_900)
        .await;
    shop.set_stock(&admin, &mug, 5).await;
    shop.set_stock(&admin, &teapot, 2).await;

    // Browse and search, anonymously.
    stock_is(&shop, &admin, &mug, 5).await;
    let found = shop
        .until(
            "/api/products?q=mug",
            None,
            "search to find the mug",
            |s, b| s == StatusCode::OK && b["items"].as_array().is_some_and(|i| i.len() == 1),
        )
        .await;
    assert_eq!(found["items"][0]["id"], mug);
    let kitchen: Value = shop
        .call(
            Method::GET,
            "/api/products?category=kitchen&sort=price_asc",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = kitchen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Blue Mug", "Iron Teapot"]);

    // Order two mugs: confirmed, and the catalog shows the stock left.
    let placed = shop.place_order(&ana, &mug, 2).await;
    assert_eq!(placed["status"], "PLACED");
    assert_eq!(placed["total_minor"], 2_900, "priced by the server");
    let id = placed["id"].as_str().unwrap().to_owned();
    let confirmed = shop
        .until(
            &format!("/api/orders/{id}"),
            Some(&ana),
            "confirmation",
            |_, b| b["status"] != "PLACED",
        )
        .await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    stock_is(&shop, &admin, &mug, 3).await;
    let mine: Value = shop
        .call(Method::GET, "/api/orders/", Some(&ana), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["id"], id);

    // Too many teapots: rejected, nothing taken.
    let greedy = shop.place_order(&ana, &teapot, 3).await;
    let rejected = shop
        .until(
            &format!("/api/orders/{}", greedy["id"].as_str().unwrap()),
            Some(&ana),
            "rejection",
            |_, b| b["status"] != "PLACED",
        )
        .await;
    assert_eq!(rejected["status"], "REJECTED");
    stock_is(&shop, &admin, &teapot, 2).await;

    // Cancel the mugs: stock restored.
    let cancelled = shop
        .call(
            Method::POST,
            &format!("/api/orders/{id}/cancel"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "CANCELLED"
    );
    stock_is(&shop, &admin, &mug, 5).await;
    let profile = shop
        .until("/api/users/me", Some(&ana), "the profile", |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(profile["email"], "ana@example.org");
    stack.stop();
}

/// (service, method, path, token, body, expected status, expected error code)
type RouteCheck<'a> = (
    &'a str,
    Method,
    String,
    Option<&'a str>,
    Option<Value>,
    StatusCode,
    &'a str,
);

#[tokio::test(flavor = "multi_thread")]
async fn each_route_reaches_its_service() {
    let stack = start("stage", None);
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let user = shop.account("route@example.org").await;
    let probe = uuid::Uuid::new_v4();
    let checks: Vec<RouteCheck> = vec![
        (
            "auth",
            Method::POST,
            "/api/auth/login".into(),
            None,
            Some(json!({"email": "x@example.org", "password": "nope nope nope"})),
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        ),
        (
            "user",
            Method::GET,
            "/api/users/not-a-uuid".into(),
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            "catalog",
            Method::GET,
            format!("/api/products/{probe}"),
            None,
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "admin-product",
            Method::GET,
            format!("/api/admin/products/{probe}"),
            Some(&admin),
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "order",
            Method::GET,
            format!("/api/orders/{probe}"),
            Some(&user),
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "inventory",
            Method::GET,
            format!("/api/admin/inventory/{probe}"),
            Some(&admin),
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "nginx itself",
            Method::GET,
            "/api/nothing-here".into(),
            None,
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (service, method, path, token, body, status, code) in checks {
        let r = shop.call(method, &path, token, body).await;
        assert_eq!(r.status(), status, "{service}: {path}");
        let request_id = r
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"], code, "{service}: {path}: {error}");
        if service != "nginx itself" {
            assert!(
                request_id.is_some_and(|id| id.len() == 32),
                "{service}: nginx's $request_id reaches the service"
            );
        }
    }
    stack.stop();
}

const SECURITY_HEADERS: [&str; 6] = [
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
    "permissions-policy",
];

fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    for name in SECURITY_HEADERS {
        assert!(headers.contains_key(name), "{what}: no {name} header");
    }
    assert_eq!(headers["strict-transport-security"], "max-age=63072000");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert!(
        headers.get("server").is_none_or(|s| s == "nginx"),
        "{what}: the server version leaks"
    );
}

/// An error as docs/api.md promises it, whether a service or nginx answered:
/// JSON `{"error", "message"}`.
async fn assert_json_error(what: &str, response: reqwest::Response) {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: Content-Type {content_type}"
    );
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_response_carries_the_security_headers() {
    let stack = start("prod", None);
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let customer = shop.account("headers@example.org").await;
    let product = shop
        .create_product(&admin, "Header Lamp", "LAMP-1", 3_000)
        .await;

    // nginx's gzip weakens the ETag of every answer it compresses; an edit
    // sent with the tag the admin was given still goes through.
    let admin_url = format!("{}/api/admin/products/{product}", shop.base);
    let read = shop
        .http
        .get(&admin_url)
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()["content-encoding"], "gzip");
    let tag = read.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/"), "gzip gave a strong tag: {tag}");
    let put = |price: i64| {
        shop.http
            .put(&admin_url)
            .bearer_auth(&admin)
            .header("if-match", &tag)
            .json(&product_body("Header Lamp", "LAMP-1", price))
            .send()
    };
    let edited = put(3_200).await.unwrap();
    assert_eq!(edited.status(), StatusCode::OK, "PUT with If-Match: {tag}");
    // The same tag again is stale now.
    let stale = put(3_300).await.unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_security_headers("412", stale.headers());

    let created = shop
        .call(Method::POST, "/api/auth/register", None, Some(json!({"email": "new@example.org", "password": "correct horse battery", "display_name": "N"})))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_security_headers("201", created.headers());

    // The edge serves the API's OpenAPI document, the committed one.
    let document = shop
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(document.status(), StatusCode::OK, "/api/openapi.json");
    assert_security_headers("/api/openapi.json", document.headers());
    assert_eq!(
        document.headers()["content-type"],
        "application/json",
        "/api/openapi.json"
    );
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .expect("docs/openapi.json");
    assert!(
        document.text().await.unwrap() == committed,
        "/api/openapi.json is not docs/openapi.json"
    );

    stock_status_in_catalog(&shop, &product, "out_of_stock").await;
    let ok = shop
        .call(Method::GET, &format!("/api/products/{product}"), None, None)
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_security_headers("200", ok.headers());
    // The catalog is micro-cached by nginx: the same read again is a hit.
    let again = shop
        .call(Method::GET, &format!("/api/products/{product}"), None, None)
        .await;
    assert_eq!(again.headers()["x-cache-status"], "HIT");
    assert_security_headers("200 from the micro-cache", again.headers());
    let etag = ok.headers()["etag"].clone();
    let not_modified = shop
        .http
        .get(format!("{}/api/products/{product}", shop.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_security_headers("304", not_modified.headers());

    let page = shop.call(Method::GET, "/", None, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers("storefront", page.headers());
    assert_eq!(page.headers()["cache-control"], "no-cache");
    // A missing asset is a 404 that no cache may keep for a year.
    let missing = shop
        .call(Method::GET, "/assets/000000000000/missing.js", None, None)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers("404 asset", missing.headers());
    assert!(
        missing.headers().get("cache-control").is_none(),
        "a 404 asset must not be cached: {:?}",
        missing.headers().get("cache-control")
    );

    let cases = [
        (
            "401",
            Method::GET,
            "/api/users/me",
            None,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "403",
            Method::GET,
            "/api/admin/products/",
            Some(customer.as_str()),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "404",
            Method::GET,
            "/api/nope",
            None,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "409",
            Method::POST,
            "/api/auth/register",
            None,
            Some(
                json!({"email": "new@example.org", "password": "correct horse battery", "display_name": "N"}),
            ),
            StatusCode::CONFLICT,
        ),
        (
            "404 beside the catalog's route",
            Method::GET,
            "/api/products-anything",
            None,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "413",
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "x".repeat(2 * 1024 * 1024)})),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, method, path, token, body, status) in cases {
        let r = shop.call(method, path, token, body).await;
        assert_eq!(r.status(), status, "{what}");
        assert_security_headers(what, r.headers());
        assert_json_error(what, r).await;
    }

    // Authentication is rate-limited: a burst beyond the limit gets 429.
    // The 60 logins go out together: one after the other, each waits for an
    // argon2 verification, and on a busy machine they may never outrun the
    // limit (10 r/s after a burst of 20).
    let attempts: Vec<_> = (0..60)
        .map(|_| {
            let request = shop
                .http
                .post(format!("{}/api/auth/login", shop.base))
                .json(&json!({"email": "a@example.org", "password": "wrong wrong wrong"}));
            tokio::spawn(async move { request.send().await.expect("nginx answers") })
        })
        .collect();
    let mut limited = None;
    for attempt in attempts {
        let r = attempt.await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(r);
        }
    }
    let limited = limited.expect("no 429 after 60 rapid logins");
    assert_security_headers("429", limited.headers());
    assert_json_error("429", limited).await;

    // HTTP redirects to HTTPS.
    let redirect = shop
        .http
        .get(format!("{}/anything", stack.http_base))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(
        redirect.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://")
    );

    // A stopped service: nginx answers 502, with the headers; it recovers.
    // (A page nginx has cached would still be served, stale: ask for a new one.)
    stack.service("catalog").stop();
    let down = shop
        .call(Method::GET, "/api/products?limit=7", None, None)
        .await;
    assert!(
        down.status() == StatusCode::BAD_GATEWAY
            || down.status() == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.status()
    );
    assert_security_headers("502", down.headers());
    assert_json_error("502", down).await;
    stack
        .service("catalog")
        .start()
        .expect("catalog starts again");
    let back = shop
        .call(Method::GET, "/api/products?limit=7", None, None)
        .await;
    assert_eq!(back.status(), StatusCode::OK, "the route recovers");

    // TLS 1.0 and 1.1 are refused; 1.2 is accepted.
    let port = stack.https_base.rsplit(':').next().unwrap().to_owned();
    let handshake = |version: &str| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "localhost",
                version,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    for old in ["-tls1", "-tls1_1"] {
        let out = handshake(old);
        assert!(
            !out.contains("Cipher is ECDHE") && !out.contains("New, TLSv1"),
            "{old} was accepted:\n{out}"
        );
    }
    let modern = handshake("-tls1_2");
    assert!(
        modern.contains("Protocol  : TLSv1.2") || modern.contains("TLSv1.2"),
        "TLS 1.2 refused:\n{modern}"
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_of_the_whole_stack_keeps_every_order_user_and_product() {
    let state = std::env::temp_dir().join(format!("teipsum-e2e-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let (product, order_id) = {
        let stack = start("prod", Some(state.clone()));
        let shop = Shop::new(&stack);
        let admin = shop.admin().await;
        let ana = shop.account("ana@example.org").await;
        let product = shop
            .create_product(&admin, "Kept Kettle", "KETTLE-1", 4_200)
            .await;
        shop.set_stock(&admin, &product, 3).await;
        let placed = shop.place_order(&ana, &product, 1).await;
        let id = placed["id"].as_str().unwrap().to_owned();
        shop.until(
            &format!("/api/orders/{id}"),
            Some(&ana),
            "confirmation",
            |_, b| b["status"] == "CONFIRMED",
        )
        .await;
        stack.stop();
        (product, id)
    };
    let stack = start("prod", Some(state.clone()));
    let shop = Shop::new(&stack);
    let ana = shop.login("ana@example.org").await;
    let order: Value = shop
        .call(
            Method::GET,
            &format!("/api/orders/{order_id}"),
            Some(&ana),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED");
    let admin = shop.admin().await;
    let product_row: Value = shop
        .call(
            Method::GET,
            &format!("/api/admin/products/{product}"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(product_row["name"], "Kept Kettle");
    let level: Value = shop
        .call(
            Method::GET,
            &format!("/api/admin/inventory/{product}"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (level["quantity"].as_i64(), level["reserved"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        shop.call(Method::GET, &format!("/api/products/{product}"), None, None)
            .await
            .status(),
        StatusCode::OK
    );
    stack.stop();
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread")]
async fn order_placement_is_rate_limited_at_the_edge_but_listing_is_not() {
    let stack = start("prod", None);
    let shop = Shop::new(&stack);
    let ana = shop.account("ana@example.org").await;
    let limit = stack
        .plan
        .nginx
        .rate_limits
        .iter()
        .find(|l| l.methods.iter().any(|m| m == "POST"))
        .expect("the order placement zone");
    // An empty order: the service refuses it (400) without writing, so only
    // the edge's limit can turn an answer into 429.
    let mut answers = Vec::new();
    for _ in 0..(limit.burst + 10) {
        let r = shop
            .call(
                Method::POST,
                "/api/orders/",
                Some(&ana),
                Some(json!({"items": []})),
            )
            .await;
        answers.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_security_headers("order 429", r.headers());
            break;
        }
    }
    assert_eq!(
        answers.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "no 429 after {} rapid placements: {answers:?}",
        answers.len()
    );
    assert!(
        answers.len() as u32 > limit.burst,
        "the burst of {} is allowed: {answers:?}",
        limit.burst
    );
    assert!(
        answers[..answers.len() - 1]
            .iter()
            .all(|s| *s == StatusCode::BAD_REQUEST)
    );
    // Reading is not placing: the list answers at any pace meanwhile.
    for _ in 0..(limit.burst + 10) {
        let r = shop
            .call(Method::GET, "/api/orders/", Some(&ana), None)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    stack.stop();
}
