//! The order ↔ inventory saga with the real `teipsum-order` and
//! `teipsum-inventory` binaries, PostgreSQL and tansu. Products arrive as
//! `product-events`, produced here as admin-product would.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::producer::FutureRecord;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
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
        ("TEIPSUM_LISTEN", format!("127.0.0.1:{}", free_port())),
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

impl Saga {
    fn start() -> Saga {
        let pg = Postgres::start();
        let broker = Tansu::start();
        broker.create_topics(&[
            ("product-events", 3),
            ("order-events", 3),
            ("inventory-events", 3),
        ]);
        let (private, public) = jwt::generate_keypair();
        let credentials = Credentials::new(&[("jwt-public-key", &public)]);
        let order = ServiceProcess::spawn(
            "teipsum-order",
            env(
                "order",
                pg.create_database("teipsum_order"),
                &broker.bootstrap,
                &credentials,
            ),
        );
        let inventory = ServiceProcess::spawn(
            "teipsum-inventory",
            env(
                "inventory",
                pg.create_database("teipsum_inventory"),
                &broker.bootstrap,
                &credentials,
            ),
        );
        let signer = Signer::new(private.as_bytes()).unwrap();
        let admin = token(&signer, Uuid::new_v4(), Role::Admin);
        Saga {
            order,
            inventory,
            pg,
            broker,
            _credentials: credentials,
            signer,
            http: teipsum_testkit::http_client(),
            admin,
        }
    }

    fn customer(&self) -> String {
        token(&self.signer, Uuid::new_v4(), Role::Customer)
    }

    /// Announce a product as admin-product would, and wait until the order
    /// service knows it.
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

    async fn set_stock(&self, product: Uuid, quantity: i64) {
        let r = self
            .http
            .put(format!(
                "{}/api/admin/inventory/{product}",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .json(&json!({"quantity": quantity}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
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
            saga.inventory.start();
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
        .json(&json!({"quantity": -5}))
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
        .json(&json!({"quantity": 5}))
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
