//! The order ↔ inventory saga with the real `teipsum-order` and
//! `teipsum-inventory` binaries, PostgreSQL and tansu. Products arrive as
//! `product-events`, produced here as admin-product would.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::producer::FutureRecord;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use teipsum_conventions::env as vars;
use teipsum_kit::{
    events::Envelope,
    jwt::{self, Claims, Role, Signer},
    kafka,
};
use teipsum_testkit::{Credentials, Postgres, ServiceProcess, Tansu, free_port};
use uuid::Uuid;

const ISSUER: &str = "https://teipsum.test";

/// Fields drop in order: the services stop before the broker and database.
struct Saga {
    order: ServiceProcess,
    inventory: ServiceProcess,
    pg: Postgres,
    broker: Tansu,
    _credentials: Credentials,
    signer: Signer,
    http: Client,
    admin: String,
}

fn env(
    service: &str,
    conninfo: String,
    broker: &str,
    credentials: &Credentials,
) -> Vec<(String, String)> {
    [
        ("TEIPSUM_SERVICE", service.to_owned()),
        ("TEIPSUM_LISTEN", format!("127.0.0.1:{}", free_port().expect("a free port"))),
        ("TEIPSUM_DATABASE", conninfo),
        ("TEIPSUM_KAFKA_BROKERS", broker.to_owned()),
        ("TEIPSUM_KAFKA_GROUP", format!("teipsum-{service}")),
        // The spec's producers of every topic (as the Plan renders them).
        (
            "TEIPSUM_TOPIC_PRODUCERS",
            "inventory-events=inventory;order-events=order;product-events=admin-product;user-login=auth;user-registered=auth".to_owned(),
        ),
        ("TEIPSUM_JWT_ISSUER", ISSUER.to_owned()),
        ("TEIPSUM_JWT_AUDIENCE", "teipsum".to_owned()),
        (
            "TEIPSUM_LOG",
            std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
        (
            "TEIPSUM_CREDENTIALS_DIR",
            credentials.path().display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Limits loose enough for the tests that are not about them (one buyer
/// places 80 orders in one of them).
const LOOSE: Limits = Limits {
    max_units: 1_000,
    max_open: 1_000,
    confirm_within_secs: 3_600,
    open_for_secs: 86_400,
};

/// `services.order.order_limits` as the unit's environment carries them.
#[derive(Clone, Copy)]
struct Limits {
    max_units: i32,
    max_open: i64,
    confirm_within_secs: u64,
    open_for_secs: u64,
}

impl Saga {
    fn start() -> Saga {
        Saga::start_with(LOOSE)
    }

    fn start_with(limits: Limits) -> Saga {
        let pg = Postgres::start().expect("PostgreSQL starts");
        let broker = Tansu::start().expect("tansu starts");
        broker
            .create_topics(&[
                ("product-events", 3),
                ("order-events", 3),
                ("inventory-events", 3),
            ])
            .expect("the topics are created");
        let (private, public) = jwt::generate_keypair();
        let credentials = Credentials::new(&[("jwt-public-key", &public)])
            .expect("the credential files are written");
        let mut order_env = env(
            "order",
            pg.create_database("teipsum_order")
                .expect("the database is created"),
            &broker.bootstrap,
            &credentials,
        );
        order_env.extend([
            (
                vars::ORDER_MAX_UNITS.to_owned(),
                limits.max_units.to_string(),
            ),
            (vars::ORDER_MAX_OPEN.to_owned(), limits.max_open.to_string()),
            (
                vars::ORDER_CONFIRM_WITHIN_SECS.to_owned(),
                limits.confirm_within_secs.to_string(),
            ),
            (
                vars::ORDER_OPEN_FOR_SECS.to_owned(),
                limits.open_for_secs.to_string(),
            ),
        ]);
        let order = ServiceProcess::spawn("teipsum-order", order_env).expect("the service starts");
        let inventory = ServiceProcess::spawn(
            "teipsum-inventory",
            env(
                "inventory",
                pg.create_database("teipsum_inventory")
                    .expect("the database is created"),
                &broker.bootstrap,
                &credentials,
            ),
        )
        .expect("the service starts");
        let signer = Signer::new(private.as_bytes()).unwrap();
        let admin = token(&signer, Uuid::new_v4(), Role::Admin);
        Saga {
            order,
            inventory,
            pg,
            broker,
            _credentials: credentials,
            signer,
            http: teipsum_testkit::http_client().expect("an HTTP client"),
            admin,
        }
    }

    fn customer(&self) -> String {
        token(&self.signer, Uuid::new_v4(), Role::Customer)
    }

    /// Announce a product as admin-product would, and wait until the order
    /// and inventory services know it.
    async fn product(&self, price_minor: i64, currency: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.publish(&Envelope::new(
            "admin-product",
            "product-created",
            1,
            id,
            json!({"product_id": id, "version": 1, "name": format!("Product {id}"), "description": "", "sku": "SKU-1",
                   "price_minor": price_minor, "currency": currency, "category": "tests", "image_urls": [], "active": true}),
        ), "product-events")
        .await;
        let sql = format!("SELECT count(*) FROM products WHERE id = '{id}'");
        self.wait("the order service to know the product", || {
            self.count("teipsum_order", &sql) == 1
        })
        .await;
        let sql = format!("SELECT count(*) FROM inventory.products WHERE product_id = '{id}'");
        self.wait("inventory to know the product", || {
            self.count("teipsum_inventory", &sql) == 1
        })
        .await;
        id
    }

    async fn publish(&self, event: &Envelope, topic: &str) {
        let producer = kafka::producer(&self.broker.bootstrap, "saga-test").unwrap();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&event.subject)
                    .payload(&serde_json::to_vec(event).unwrap()),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    async fn set_stock(&self, product: Uuid, on_hand: i64) {
        let r = self.put_stock(product, json!({"on_hand": on_hand})).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    async fn put_stock(&self, product: Uuid, body: Value) -> reqwest::Response {
        self.http
            .put(format!(
                "{}/api/admin/inventory/{product}",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn adjust_stock(&self, product: Uuid, delta: Value) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/admin/inventory/{product}/adjust",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .json(&json!({"delta": delta}))
            .send()
            .await
            .unwrap()
    }

    async fn stock(&self, product: Uuid) -> (i64, i64) {
        let level: Value = self
            .http
            .get(format!(
                "{}/api/admin/inventory/{product}",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            level["quantity"].as_i64().unwrap(),
            level["reserved"].as_i64().unwrap(),
        )
    }

    async fn place(&self, token: &str, items: Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/api/orders/", self.order.base))
            .bearer_auth(token)
            .json(&json!({"items": items}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    async fn get_order(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/orders/{id}", self.order.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Poll the order until it leaves PLACED.
    async fn settled(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let order: Value = self.get_order(&self.admin, id).await.json().await.unwrap();
            if order["status"] != "PLACED" {
                return order;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "order {id} stuck in PLACED"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn count(&self, database: &str, sql: &str) -> i64 {
        self.pg.psql(database, sql).unwrap().parse().unwrap()
    }

    async fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn token(signer: &Signer, user: Uuid, role: Role) -> String {
    let now = jwt::now();
    signer.sign(&Claims {
        iss: ISSUER.into(),
        aud: "teipsum".into(),
        sub: user,
        role,
        iat: now,
        nbf: now,
        exp: now + 900,
        jti: Uuid::new_v4(),
    })
}

async fn placed(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "PLACED");
    order
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_buyers_never_get_more_than_the_stock() {
    let saga = Saga::start();
    let product = saga.product(1_999, "EUR").await;
    saga.set_stock(product, 10).await;
    let buyers: Vec<String> = (0..40).map(|_| saga.customer()).collect();
    let responses = join_all(buyers.iter().enumerate().map(|(i, token)| {
        saga.place(
            token,
            json!([{"product_id": product, "quantity": 1 + (i % 2)}]),
            None,
        )
    }))
    .await;
    let mut orders = Vec::new();
    for r in responses {
        orders.push(placed(r).await);
    }
    let mut sold = 0;
    let mut confirmed = 0;
    for order in &orders {
        let settled = saga.settled(order["id"].as_str().unwrap()).await;
        match settled["status"].as_str().unwrap() {
            "CONFIRMED" => {
                confirmed += 1;
                sold += settled["items"][0]["quantity"].as_i64().unwrap();
            }
            "REJECTED" => assert!(
                settled["reason"]
                    .as_str()
                    .unwrap()
                    .contains("insufficient stock")
            ),
            other => panic!("order ended {other}"),
        }
    }
    let (left, reserved) = saga.stock(product).await;
    println!("{confirmed} of 40 orders confirmed, {sold} units sold, {left} left");
    assert!(sold <= 10, "oversold: {sold} units of 10");
    assert_eq!(reserved, sold);
    assert_eq!(left + reserved, 10, "stock + reserved = initial");
    assert!(
        left < 2,
        "a unit that some order wanted stayed unsold: {left}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_item_orders_in_opposite_orders_do_not_deadlock() {
    let saga = Saga::start();
    let a = saga.product(500, "EUR").await;
    let b = saga.product(700, "EUR").await;
    saga.set_stock(a, 100).await;
    saga.set_stock(b, 100).await;
    let buyer = saga.customer();
    let responses = join_all((0..40).map(|i| {
        let items = if i % 2 == 0 {
            json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}])
        } else {
            json!([{"product_id": b, "quantity": 1}, {"product_id": a, "quantity": 1}])
        };
        saga.place(&buyer, items, None)
    }))
    .await;
    for r in responses {
        let order = placed(r).await;
        assert_eq!(order["total_minor"], 1200);
        let settled = saga.settled(order["id"].as_str().unwrap()).await;
        assert_eq!(settled["status"], "CONFIRMED", "{settled}");
    }
    assert_eq!(saga.stock(a).await, (60, 40));
    assert_eq!(saga.stock(b).await, (60, 40));
    assert_eq!(
        saga.count(
            "teipsum_inventory",
            "SELECT count(*) FROM kit_parked_events"
        ),
        0,
        "no deadlock failures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivered_events_reserve_and_release_once() {
    let saga = Saga::start();
    let product = saga.product(1_000, "EUR").await;
    saga.set_stock(product, 5).await;
    let buyer = saga.customer();
    let order = placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 2}]),
            None,
        )
        .await,
    )
    .await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(saga.settled(&id).await["status"], "CONFIRMED");
    assert_eq!(saga.stock(product).await, (3, 2));

    // The very same order-placed again (same event id), then a copy with a new id.
    let payload = saga
        .pg
        .psql(
            "teipsum_order",
            &format!(
                "SELECT payload::text FROM kit_outbox WHERE key = '{id}' AND topic = 'order-events'"
            ),
        )
        .unwrap();
    let original: Envelope = serde_json::from_str(&payload).unwrap();
    saga.publish(&original, "order-events").await;
    let mut copy = original.clone();
    copy.id = Uuid::now_v7();
    saga.publish(&copy, "order-events").await;
    let copy_sql = format!(
        "SELECT count(*) FROM kit_processed_events WHERE event_id = '{}'",
        copy.id
    );
    saga.wait("inventory to see the copy", || {
        saga.count("teipsum_inventory", &copy_sql) == 1
    })
    .await;
    assert_eq!(saga.stock(product).await, (3, 2), "reserved once");

    let cancel = saga
        .http
        .post(format!("{}/api/orders/{id}/cancel", saga.order.base))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    let again = saga
        .http
        .post(format!("{}/api/orders/{id}/cancel", saga.order.base))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "CANCELLED");
    let cancelled_sql = format!(
        "SELECT count(*) FROM inventory.reservations WHERE order_id = '{id}' AND released_at IS NOT NULL"
    );
    saga.wait("the release", || {
        saga.count("teipsum_inventory", &cancelled_sql) == 1
    })
    .await;
    assert_eq!(saga.stock(product).await, (5, 0), "stock restored");
    let payload = saga.pg.psql("teipsum_order", &format!("SELECT payload::text FROM kit_outbox WHERE key = '{id}' AND payload->>'type' = 'order-cancelled'")).unwrap();
    let mut cancelled: Envelope = serde_json::from_str(&payload).unwrap();
    saga.publish(&cancelled, "order-events").await;
    cancelled.id = Uuid::now_v7();
    saga.publish(&cancelled, "order-events").await;
    let copy_sql = format!(
        "SELECT count(*) FROM kit_processed_events WHERE event_id = '{}'",
        cancelled.id
    );
    saga.wait("inventory to see the cancel copy", || {
        saga.count("teipsum_inventory", &copy_sql) == 1
    })
    .await;
    assert_eq!(saga.stock(product).await, (5, 0), "restored once");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_gives_the_same_order() {
    let saga = Saga::start();
    let product = saga.product(250, "EUR").await;
    saga.set_stock(product, 100).await;
    let buyer = saga.customer();
    let items = json!([{"product_id": product, "quantity": 3}]);
    let first = placed(saga.place(&buyer, items.clone(), Some("checkout-1")).await).await;
    let responses =
        join_all((0..5).map(|_| saga.place(&buyer, items.clone(), Some("checkout-1")))).await;
    for r in responses {
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap()["id"], first["id"]);
    }
    assert_eq!(
        saga.count("teipsum_order", "SELECT count(*) FROM orders"),
        1
    );
    let other = saga
        .place(
            &buyer,
            json!([{"product_id": product, "quantity": 4}]),
            Some("checkout-1"),
        )
        .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Keys belong to their user: another buyer's key of the same name is new.
    let stranger = placed(
        saga.place(&saga.customer(), items, Some("checkout-1"))
            .await,
    )
    .await;
    assert_ne!(stranger["id"], first["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_inventory_mid_stream_loses_no_order() {
    let mut saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 50).await;
    let buyer = saga.customer();
    let mut ids = Vec::new();
    for i in 0..80 {
        if i == 25 {
            saga.inventory.kill();
        }
        if i == 55 {
            saga.inventory.start().expect("inventory starts again");
        }
        let order = placed(
            saga.place(
                &buyer,
                json!([{"product_id": product, "quantity": 1}]),
                None,
            )
            .await,
        )
        .await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    let mut confirmed = 0;
    for id in &ids {
        if saga.settled(id).await["status"] == "CONFIRMED" {
            confirmed += 1;
        }
    }
    let (left, reserved) = saga.stock(product).await;
    println!(
        "{confirmed} confirmed of {}; {left} left, {reserved} reserved",
        ids.len()
    );
    assert_eq!(confirmed, 50, "all the stock, and no more, is sold");
    assert_eq!((left, reserved), (0, 50));
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_reads_another_buyers_orders_and_bad_input_writes_nothing() {
    let saga = Saga::start();
    let euro = saga.product(100, "EUR").await;
    let dollar = saga.product(100, "USD").await;
    saga.set_stock(euro, 10).await;
    let ana = saga.customer();
    let order = placed(
        saga.place(&ana, json!([{"product_id": euro, "quantity": 1}]), None)
            .await,
    )
    .await;
    let id = order["id"].as_str().unwrap();

    assert_eq!(
        saga.get_order(&saga.customer(), id).await.status(),
        StatusCode::NOT_FOUND,
        "someone else's order"
    );
    assert_eq!(saga.get_order(&ana, id).await.status(), StatusCode::OK);
    assert_eq!(
        saga.get_order(&saga.admin, id).await.status(),
        StatusCode::OK
    );
    let anonymous = saga
        .http
        .get(format!("{}/api/orders/", saga.order.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let bob_list: Value = saga
        .http
        .get(format!("{}/api/orders/", saga.order.base))
        .bearer_auth(saga.customer())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bob_list["items"], json!([]));
    let ana_list: Value = saga
        .http
        .get(format!("{}/api/orders/?limit=10", saga.order.base))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ana_list["items"][0]["id"], order["id"]);
    let stranger_cancel = saga
        .http
        .post(format!("{}/api/orders/{id}/cancel", saga.order.base))
        .bearer_auth(saga.customer())
        .send()
        .await
        .unwrap();
    assert_eq!(stranger_cancel.status(), StatusCode::NOT_FOUND);

    let before = saga.count("teipsum_order", "SELECT count(*) FROM orders");
    let unknown = Uuid::new_v4();
    for (what, body, status) in [
        (
            "zero quantity",
            json!({"items": [{"product_id": euro, "quantity": 0}]}),
            400,
        ),
        (
            "negative quantity",
            json!({"items": [{"product_id": euro, "quantity": -1}]}),
            400,
        ),
        (
            "huge quantity",
            json!({"items": [{"product_id": euro, "quantity": 10_000_000_000i64}]}),
            400,
        ),
        (
            "duplicate lines",
            json!({"items": [{"product_id": euro, "quantity": 1}, {"product_id": euro, "quantity": 1}]}),
            400,
        ),
        (
            "malformed id",
            json!({"items": [{"product_id": "42; DROP TABLE orders", "quantity": 1}]}),
            400,
        ),
        ("no items", json!({"items": []}), 400),
        (
            "a price from the client",
            json!({"items": [{"product_id": euro, "quantity": 1, "unit_price_minor": 1}]}),
            400,
        ),
        (
            "unknown product",
            json!({"items": [{"product_id": unknown, "quantity": 1}]}),
            422,
        ),
        (
            "mixed currencies",
            json!({"items": [{"product_id": euro, "quantity": 1}, {"product_id": dollar, "quantity": 1}]}),
            422,
        ),
        ("wrong shape", json!({"items": "everything"}), 400),
    ] {
        let r = saga
            .http
            .post(format!("{}/api/orders/", saga.order.base))
            .bearer_auth(&ana)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{what}");
        let error: Value = r.json().await.unwrap();
        assert!(error["error"].is_string(), "{what}: {error}");
    }
    for path in ["/api/orders/not-an-id", "/api/orders/not-an-id/cancel"] {
        let method = if path.ends_with("cancel") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let r = saga
            .http
            .request(method, format!("{}{path}", saga.order.base))
            .bearer_auth(&ana)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let bad_stock = saga
        .http
        .put(format!(
            "{}/api/admin/inventory/{euro}",
            saga.inventory.base
        ))
        .bearer_auth(&saga.admin)
        .json(&json!({"on_hand": -5}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_stock.status(), StatusCode::BAD_REQUEST);
    let customer_stock = saga
        .http
        .put(format!(
            "{}/api/admin/inventory/{euro}",
            saga.inventory.base
        ))
        .bearer_auth(&ana)
        .json(&json!({"on_hand": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(customer_stock.status(), StatusCode::FORBIDDEN);
    let below_zero = saga
        .http
        .post(format!(
            "{}/api/admin/inventory/{euro}/adjust",
            saga.inventory.base
        ))
        .bearer_auth(&saga.admin)
        .json(&json!({"delta": -1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(below_zero.status(), StatusCode::CONFLICT);
    assert_eq!(
        saga.count("teipsum_order", "SELECT count(*) FROM orders"),
        before,
        "nothing written"
    );
    saga.settled(id).await;
    assert_eq!(
        saga.stock(euro).await,
        (9, 1),
        "refused requests changed no stock"
    );
}

async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_line_beyond_the_unit_cap_is_refused() {
    let saga = Saga::start_with(Limits {
        max_units: 3,
        ..LOOSE
    });
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 100).await;
    let buyer = saga.customer();
    let refused = saga
        .place(
            &buyer,
            json!([{"product_id": product, "quantity": 4}]),
            None,
        )
        .await;
    assert_eq!(
        error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "QUANTITY_LIMIT"
    );
    assert_eq!(
        saga.count("teipsum_order", "SELECT count(*) FROM orders"),
        0
    );
    placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 3}]),
            None,
        )
        .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_placements_never_pass_the_open_order_cap() {
    let saga = Saga::start_with(Limits {
        max_open: 2,
        ..LOOSE
    });
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 1_000).await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let buyers: Vec<String> = ids
        .iter()
        .map(|id| token(&saga.signer, *id, Role::Customer))
        .collect();
    // Each buyer fires 10 placements at once.
    let saga_ref = &saga;
    let responses = join_all(buyers.iter().flat_map(|buyer| {
        (0..10).map(move |_| {
            saga_ref.place(buyer, json!([{"product_id": product, "quantity": 1}]), None)
        })
    }))
    .await;
    let mut created = Vec::new();
    for r in responses {
        match r.status() {
            StatusCode::CREATED => created.push(r.json::<Value>().await.unwrap()),
            StatusCode::CONFLICT => {
                assert_eq!(
                    error_code(r, StatusCode::CONFLICT).await,
                    "TOO_MANY_OPEN_ORDERS"
                )
            }
            other => panic!("placing: {other} {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(created.len(), 6, "two open orders per buyer, no more");
    for order in &created {
        assert_eq!(
            saga.settled(order["id"].as_str().unwrap()).await["status"],
            "CONFIRMED"
        );
    }
    // Confirmed orders are still open; a cancelled one frees its slot.
    let first = &buyers[0];
    let again = saga
        .place(first, json!([{"product_id": product, "quantity": 1}]), None)
        .await;
    assert_eq!(
        error_code(again, StatusCode::CONFLICT).await,
        "TOO_MANY_OPEN_ORDERS"
    );
    let mine = created
        .iter()
        .find(|o| o["user_id"] == ids[0].to_string())
        .unwrap();
    let cancel = saga
        .http
        .post(format!(
            "{}/api/orders/{}/cancel",
            saga.order.base,
            mine["id"].as_str().unwrap()
        ))
        .bearer_auth(first)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    placed(
        saga.place(first, json!([{"product_id": product, "quantity": 1}]), None)
            .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_not_confirmed_in_time_expires_and_its_stock_returns() {
    let mut saga = Saga::start_with(Limits {
        max_open: 1,
        confirm_within_secs: 2,
        ..LOOSE
    });
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 5).await;
    // Inventory is down: nobody answers the order.
    saga.inventory.kill();
    let buyer = saga.customer();
    let order = placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 2}]),
            None,
        )
        .await,
    )
    .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let expired = saga.settled(&id).await;
    assert_eq!(expired["status"], "EXPIRED", "{expired}");
    assert!(
        expired["reason"]
            .as_str()
            .unwrap()
            .contains("not confirmed within 2 seconds"),
        "{expired}"
    );
    // Inventory comes back: it reserves for the order, then the expiry's
    // order-cancelled releases it, and the late answer changes nothing.
    saga.inventory.start().expect("inventory starts again");
    let released = format!(
        "SELECT count(*) FROM inventory.reservations WHERE order_id = '{id}' AND released_at IS NOT NULL"
    );
    saga.wait("the expired order's stock to be released", || {
        saga.count("teipsum_inventory", &released) == 1
    })
    .await;
    assert_eq!(saga.stock(product).await, (5, 0), "all the stock is back");
    let answered = format!(
        "SELECT count(*) FROM kit_outbox WHERE key = '{id}' AND payload->>'type' = 'stock-reserved'"
    );
    saga.wait("inventory's late answer", || {
        saga.count("teipsum_inventory", &answered) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        saga.get_order(&buyer, &id)
            .await
            .json::<Value>()
            .await
            .unwrap()["status"],
        "EXPIRED"
    );
    // An expired order is no longer open: the buyer (capped at one) can order again.
    let next = placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 2}]),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        saga.settled(next["id"].as_str().unwrap()).await["status"],
        "CONFIRMED"
    );
    assert_eq!(saga.stock(product).await, (3, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn setting_stock_while_orders_reserve_keeps_every_reservation() {
    let saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 100).await;
    let buyer = saga.customer();
    for _ in 0..10 {
        let order = placed(
            saga.place(
                &buyer,
                json!([{"product_id": product, "quantity": 1}]),
                None,
            )
            .await,
        )
        .await;
        saga.settled(order["id"].as_str().unwrap()).await;
    }
    assert_eq!(saga.stock(product).await, (90, 10));
    // A stocktake of 100 units on hand while 20 more orders reserve.
    let orders = join_all((0..20).map(|_| {
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        )
    }));
    let puts = join_all((0..5).map(|_| saga.put_stock(product, json!({"on_hand": 100}))));
    let (orders, puts) = tokio::join!(orders, puts);
    for r in puts {
        assert_eq!(r.status(), StatusCode::OK);
    }
    for r in orders {
        let order = placed(r).await;
        assert_eq!(
            saga.settled(order["id"].as_str().unwrap()).await["status"],
            "CONFIRMED"
        );
    }
    let (available, reserved) = saga.stock(product).await;
    assert_eq!(reserved, 30);
    assert_eq!(
        available + reserved,
        100,
        "no reservation was undone by a stock set"
    );
    // On hand below what orders hold is refused.
    let below = saga.put_stock(product, json!({"on_hand": 29})).await;
    assert_eq!(
        error_code(below, StatusCode::CONFLICT).await,
        "BELOW_RESERVED"
    );
    assert_eq!(saga.stock(product).await, (70, 30));
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_of_unknown_or_deleted_products_is_refused_and_their_orders_rejected() {
    let saga = Saga::start();
    let unknown = Uuid::new_v4();
    let r = saga.put_stock(unknown, json!({"on_hand": 5})).await;
    assert_eq!(
        error_code(r, StatusCode::NOT_FOUND).await,
        "UNKNOWN_PRODUCT"
    );
    let r = saga.adjust_stock(unknown, json!(5)).await;
    assert_eq!(
        error_code(r, StatusCode::NOT_FOUND).await,
        "UNKNOWN_PRODUCT"
    );

    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 5).await;
    saga.publish(
        &Envelope::new(
            "admin-product",
            "product-deleted",
            1,
            product,
            json!({"product_id": product, "version": 2}),
        ),
        "product-events",
    )
    .await;
    let deleted = format!(
        "SELECT count(*) FROM inventory.products WHERE product_id = '{product}' AND deleted"
    );
    saga.wait("inventory to hear of the deletion", || {
        saga.count("teipsum_inventory", &deleted) == 1
    })
    .await;
    let r = saga.put_stock(product, json!({"on_hand": 9})).await;
    assert_eq!(error_code(r, StatusCode::CONFLICT).await, "PRODUCT_DELETED");
    let r = saga.adjust_stock(product, json!(1)).await;
    assert_eq!(error_code(r, StatusCode::CONFLICT).await, "PRODUCT_DELETED");

    // An order placed before the order service heard of the deletion.
    let order_id = Uuid::now_v7();
    saga.publish(
        &Envelope::new(
            "order",
            "order-placed",
            1,
            order_id,
            json!({"order_id": order_id, "user_id": Uuid::new_v4(),
                   "items": [{"product_id": product, "quantity": 1}]}),
        ),
        "order-events",
    )
    .await;
    let rejected = format!("SELECT reason FROM inventory.rejections WHERE order_id = '{order_id}'");
    saga.wait("inventory to answer the order", || {
        saga.pg.psql("teipsum_inventory", &rejected).unwrap() == "product deleted"
    })
    .await;
    assert_eq!(saga.stock(product).await, (5, 0), "nothing reserved");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_seen_before_its_placement_reserves_nothing() {
    let saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 5).await;
    let (order_id, user_id) = (Uuid::now_v7(), Uuid::new_v4());
    // What a grown `order-events` can deliver: the cancel first.
    saga.publish(
        &Envelope::new(
            "order",
            "order-cancelled",
            1,
            order_id,
            json!({"order_id": order_id, "user_id": user_id}),
        ),
        "order-events",
    )
    .await;
    saga.publish(
        &Envelope::new(
            "order",
            "order-placed",
            1,
            order_id,
            json!({"order_id": order_id, "user_id": user_id,
                   "items": [{"product_id": product, "quantity": 2}]}),
        ),
        "order-events",
    )
    .await;
    let rejected = format!("SELECT reason FROM inventory.rejections WHERE order_id = '{order_id}'");
    saga.wait("inventory to answer the late placement", || {
        saga.pg.psql("teipsum_inventory", &rejected).unwrap() == "order cancelled"
    })
    .await;
    assert_eq!(saga.stock(product).await, (5, 0), "nothing is held");
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_adjustments_are_bounded_and_never_panic() {
    let saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 10).await;
    for delta in [json!(i64::MIN), json!(i64::MAX), json!(0), json!(1_000_001)] {
        let r = saga.adjust_stock(product, delta.clone()).await;
        assert_eq!(
            error_code(r, StatusCode::BAD_REQUEST).await,
            "INVALID_INPUT",
            "{delta}"
        );
    }
    saga.set_stock(product, 1_000_000).await;
    let r = saga.adjust_stock(product, json!(1)).await;
    assert_eq!(
        error_code(r, StatusCode::BAD_REQUEST).await,
        "INVALID_INPUT",
        "above the bound"
    );
    let r = saga.put_stock(product, json!({"on_hand": 1_000_001})).await;
    assert_eq!(
        error_code(r, StatusCode::BAD_REQUEST).await,
        "INVALID_INPUT"
    );
    let r = saga.adjust_stock(product, json!(-1_000_000)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(saga.stock(product).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_list_pages_with_every_line() {
    let saga = Saga::start();
    let a = saga.product(100, "EUR").await;
    let b = saga.product(250, "EUR").await;
    saga.set_stock(a, 100).await;
    saga.set_stock(b, 100).await;
    let buyer = saga.customer();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let order = placed(
            saga.place(
                &buyer,
                json!([{"product_id": b, "quantity": i}, {"product_id": a, "quantity": 1}]),
                None,
            )
            .await,
        )
        .await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    let page = |cursor: Option<String>| {
        let url = match cursor {
            Some(c) => format!("{}/api/orders/?limit=2&cursor={c}", saga.order.base),
            None => format!("{}/api/orders/?limit=2", saga.order.base),
        };
        let request = saga.http.get(url).bearer_auth(&buyer);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let first = page(None).await;
    let second = page(first["next_cursor"].as_str().map(str::to_owned)).await;
    assert!(second["next_cursor"].is_null());
    let listed: Vec<&Value> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .collect();
    let listed_ids: Vec<&str> = listed.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed_ids, newest_first);
    for order in listed {
        let shown = saga
            .get_order(&buyer, order["id"].as_str().unwrap())
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(order["items"], shown["items"], "the list shows every line");
        assert_eq!(order["items"].as_array().unwrap().len(), 2);
    }
}

/// A confirmed order stops counting as open once `open_for` has passed: a
/// regular customer is not refused for the purchases she made.
#[tokio::test(flavor = "multi_thread")]
async fn a_confirmed_order_stops_counting_as_open_after_its_window() {
    let saga = Saga::start_with(Limits {
        max_open: 1,
        open_for_secs: 3,
        ..LOOSE
    });
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 100).await;
    let buyer = token(&saga.signer, Uuid::new_v4(), Role::Customer);
    let line = json!([{"product_id": product, "quantity": 1}]);
    let first = placed(saga.place(&buyer, line.clone(), None).await).await;
    assert_eq!(
        saga.settled(first["id"].as_str().unwrap()).await["status"],
        "CONFIRMED"
    );
    // Within the window the confirmed order is open: the cap holds.
    assert_eq!(
        error_code(
            saga.place(&buyer, line.clone(), None).await,
            StatusCode::CONFLICT
        )
        .await,
        "TOO_MANY_OPEN_ORDERS"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    placed(saga.place(&buyer, line, None).await).await;
}

/// A page of orders costs a fixed number of statements, whatever its size:
/// counted by pg_stat_statements in the order database.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_orders_runs_the_same_statements_for_one_order_or_eight() {
    let saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    saga.set_stock(product, 100).await;
    let buyer = saga.customer();
    let sql = |q: &str| saga.pg.psql("teipsum_order", q).expect("psql");
    sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    // The statements of one listing that read orders or their lines.
    let listing = |limit: u32| {
        sql("SELECT pg_stat_statements_reset()");
        let url = format!("{}/api/orders/?limit={limit}", saga.order.base);
        let request = saga.http.get(url).bearer_auth(&buyer);
        async move {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            let calls = sql(
                "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s \
                 JOIN pg_database d ON d.oid = s.dbid \
                 WHERE d.datname = 'teipsum_order' \
                 AND (s.query LIKE 'SELECT%FROM order_items%' \
                      OR s.query LIKE 'SELECT%FROM orders WHERE%id%') \
                 AND s.query NOT LIKE '%SKIP LOCKED%'",
            );
            (page["items"].as_array().unwrap().len(), calls)
        }
    };
    placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        )
        .await,
    )
    .await;
    let (one, one_calls) = listing(20).await;
    for _ in 0..7 {
        placed(
            saga.place(
                &buyer,
                json!([{"product_id": product, "quantity": 1}]),
                None,
            )
            .await,
        )
        .await;
    }
    let (eight, eight_calls) = listing(20).await;
    assert_eq!((one, eight), (1, 8));
    assert_eq!(
        one_calls, eight_calls,
        "a page of 8 orders ran more statements than a page of 1"
    );
    assert_eq!(
        eight_calls, "2",
        "the orders and their lines, one statement each"
    );
}
