//! The order ↔ inventory saga from the order side: placing, idempotency,
//! limits, expiry, listing, with the real `teipsum-order` and
//! `teipsum-inventory` on the saga stack.

mod stack;

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::{LOOSE, Limits, Saga, error_code, placed, token};
use teipsum_kit::jwt::Role;
use uuid::Uuid;

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
    // The expired order completed once, as expired: inventory's late
    // answer did not complete it a second time.
    let completion = "teipsum_order_completion_seconds_count";
    let metrics = saga
        .order_metrics_once(|m| m.value(completion, &[]) >= Some(2.0))
        .await;
    assert_eq!(
        metrics.value(completion, &[("outcome", "expired")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.value(completion, &[("outcome", "confirmed")]),
        Some(1.0)
    );
    assert_eq!(metrics.value(completion, &[]), Some(2.0));
    let waited = metrics
        .value(
            "teipsum_order_completion_seconds_sum",
            &[("outcome", "expired")],
        )
        .unwrap();
    assert!(
        waited >= 2.0,
        "it waited its 2 s before it expired: {waited}"
    );
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
    // The statements of one listing that read orders or their lines (not
    // those that lock an order to change it: the expiry sweep, the saga's
    // answers, which may arrive meanwhile).
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
                 AND s.query NOT LIKE '%FOR UPDATE%'",
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

#[tokio::test(flavor = "multi_thread")]
async fn settled_orders_show_by_state_and_in_the_completion_histogram() {
    let saga = Saga::start();
    let product = saga.product(500, "EUR").await;
    saga.set_stock(product, 1).await;
    let buyer = saga.customer();
    let one = json!([{"product_id": product, "quantity": 1}]);
    let confirmed = placed(saga.place(&buyer, one.clone(), None).await).await;
    let confirmed = saga.settled(confirmed["id"].as_str().unwrap()).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    let rejected = placed(saga.place(&buyer, one, None).await).await;
    let rejected = saga.settled(rejected["id"].as_str().unwrap()).await;
    assert_eq!(rejected["status"], "REJECTED", "the only unit is sold");

    // The histogram is observed once the consumer's transaction commits,
    // a moment after the order shows its state.
    let completion = "teipsum_order_completion_seconds_count";
    let metrics = saga
        .order_metrics_once(|m| m.value(completion, &[]) >= Some(2.0))
        .await;
    for (outcome, n) in [("confirmed", 1.0), ("rejected", 1.0)] {
        assert_eq!(
            metrics.value(completion, &[("outcome", outcome)]),
            Some(n),
            "{outcome}: {metrics:#?}"
        );
    }
    assert_eq!(
        metrics.label_values(completion, "outcome"),
        ["confirmed", "rejected"]
    );
    let seconds = metrics
        .value("teipsum_order_completion_seconds_sum", &[])
        .unwrap();
    assert!(
        seconds > 0.0 && seconds < 180.0,
        "placed to settled took {seconds} s in all"
    );
    for (state, n) in [
        ("placed", 0.0),
        ("confirmed", 1.0),
        ("rejected", 1.0),
        ("cancelled", 0.0),
        ("expired", 0.0),
    ] {
        assert_eq!(
            metrics.value("teipsum_orders", &[("state", state)]),
            Some(n),
            "{state}"
        );
    }
    // Cancelling a confirmed order changes the counts, not the histogram:
    // its saga had completed.
    let cancelled = saga
        .http
        .post(format!(
            "{}/api/orders/{}/cancel",
            saga.order.base,
            confirmed["id"].as_str().unwrap()
        ))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    let after = saga.order_metrics().await;
    assert_eq!(
        after.value("teipsum_orders", &[("state", "cancelled")]),
        Some(1.0)
    );
    assert_eq!(
        after.value("teipsum_orders", &[("state", "confirmed")]),
        Some(0.0)
    );
    assert_eq!(after.value(completion, &[]), Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_placed_order_completes_its_saga_as_cancelled() {
    let mut saga = Saga::start();
    let product = saga.product(100, "EUR").await;
    // Nobody answers: the order stays placed until its buyer cancels it.
    saga.inventory.kill();
    let buyer = saga.customer();
    let order = placed(
        saga.place(
            &buyer,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        )
        .await,
    )
    .await;
    let placed_orders = saga.order_metrics().await;
    assert_eq!(
        placed_orders.value("teipsum_orders", &[("state", "placed")]),
        Some(1.0)
    );
    let cancelled = saga
        .http
        .post(format!(
            "{}/api/orders/{}/cancel",
            saga.order.base,
            order["id"].as_str().unwrap()
        ))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    let metrics = saga.order_metrics().await;
    let completion = "teipsum_order_completion_seconds_count";
    assert_eq!(
        metrics.value(completion, &[("outcome", "cancelled")]),
        Some(1.0)
    );
    assert_eq!(metrics.value(completion, &[]), Some(1.0));
    assert_eq!(
        metrics.value("teipsum_orders", &[("state", "cancelled")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.value("teipsum_orders", &[("state", "placed")]),
        Some(0.0)
    );
}
