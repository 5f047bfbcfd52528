//! Inventory end to end: stock levels, reservations that hold under
//! concurrency and redelivery, unknown and deleted products, with the real
//! `teipsum-inventory` (and `teipsum-order` placing) on the saga stack.

#[path = "../../order/tests/stack/mod.rs"]
mod stack;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::{Saga, error_code, placed};
use teipsum_events::{Event, OrderCancelled, OrderLine, OrderPlaced, ProductDeleted};
use teipsum_kit::events::Envelope;
use uuid::Uuid;

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
    saga.emit(Event::ProductDeleted(ProductDeleted {
        product_id: product,
        version: 2,
    }))
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
    saga.emit(Event::OrderPlaced(OrderPlaced {
        order_id,
        user_id: Uuid::new_v4(),
        items: vec![OrderLine {
            product_id: product,
            quantity: 1,
        }],
    }))
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
    saga.emit(Event::OrderCancelled(OrderCancelled {
        order_id,
        user_id,
        reason: None,
    }))
    .await;
    saga.emit(Event::OrderPlaced(OrderPlaced {
        order_id,
        user_id,
        items: vec![OrderLine {
            product_id: product,
            quantity: 2,
        }],
    }))
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

/// `sql`'s count in inventory's database.
fn inventory(saga: &Saga, sql: &str) -> i64 {
    saga.count("teipsum_inventory", sql)
}

/// `order-placed` for `lines` (product, units), as the order service emits it.
fn placement(order_id: Uuid, lines: &[(Uuid, i64)]) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id,
        user_id: Uuid::new_v4(),
        items: lines
            .iter()
            .map(|&(product_id, quantity)| OrderLine {
                product_id,
                quantity,
            })
            .collect(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_reserves_what_its_orders_one_at_a_time_would_and_isolates_a_poison_event() {
    let mut saga = Saga::start_batched(64);
    let a = saga.product(100, "EUR").await;
    let b = saga.product(100, "EUR").await;
    let c = saga.product(100, "EUR").await;
    saga.set_stock(a, 10).await;
    saga.set_stock(b, 3).await;
    saga.set_stock(c, 10).await;

    // Stopped, inventory finds every event waiting when it is back, and
    // takes them in batches.
    saga.inventory.stop();
    // Twenty orders of one of each, while only three units of `b` exist:
    // seventeen are refused and take nothing of `a` either.
    for _ in 0..20 {
        saga.emit(placement(Uuid::now_v7(), &[(b, 1), (a, 1)]))
            .await;
    }
    // A product named twice takes both lines.
    saga.emit(placement(Uuid::now_v7(), &[(a, 2), (a, 2)]))
        .await;
    saga.emit(placement(Uuid::now_v7(), &[(a, 1), (c, 0)]))
        .await;
    // Placed and cancelled within the same batch.
    let gone = Uuid::now_v7();
    saga.emit(placement(gone, &[(a, 1)])).await;
    saga.emit(Event::OrderCancelled(OrderCancelled {
        order_id: gone,
        user_id: Uuid::new_v4(),
        reason: None,
    }))
    .await;
    saga.inventory.start().expect("inventory starts again");
    saga.wait("inventory to answer every order and the cancel", || {
        inventory(&saga, "SELECT count(*) FROM inventory.rejections") == 18
            && inventory(
                &saga,
                "SELECT count(*) FROM inventory.reservations WHERE released_at IS NOT NULL",
            ) == 1
    })
    .await;
    assert_eq!(
        inventory(&saga, "SELECT count(*) FROM inventory.reservations"),
        3 * 2 + 1 + 1
    );
    assert_eq!(
        inventory(
            &saga,
            "SELECT count(*) FROM inventory.rejections WHERE reason = 'insufficient stock'"
        ),
        17
    );
    assert_eq!(
        inventory(
            &saga,
            "SELECT count(*) FROM inventory.rejections WHERE reason = 'invalid quantity'"
        ),
        1
    );
    assert_eq!(saga.stock(a).await, (10 - 3 - 4, 3 + 4));
    assert_eq!(saga.stock(b).await, (0, 3));
    assert_eq!(saga.stock(c).await, (10, 0));
    assert!(
        inventory(
            &saga,
            "SELECT count(*) - count(DISTINCT processed_at) FROM kit_processed_events WHERE consumer = 'inventory'"
        ) > 0,
        "some transaction applied more than one event"
    );
    // The last level announced is the level.
    let announced = |product: Uuid| {
        saga.count(
            "teipsum_inventory",
            &format!(
                "SELECT (payload->'data'->>'quantity')::bigint FROM kit_outbox \
                 WHERE topic = 'inventory-events' AND key = '{product}' \
                   AND payload->>'type' = 'stock-changed' ORDER BY seq DESC LIMIT 1"
            ),
        )
    };
    assert_eq!((announced(a), announced(b)), (3, 0));

    // A poison event among five good ones: the batch fails, its events are
    // applied one at a time, and only the poison is parked.
    saga.inventory.stop();
    for i in 0..5 {
        if i == 2 {
            let mut poison = placement(Uuid::now_v7(), &[(c, 1)]).envelope();
            poison.data = json!({"not": "an order"});
            saga.publish(&poison, "order-events").await;
        }
        saga.emit(placement(Uuid::now_v7(), &[(c, 1)])).await;
    }
    saga.inventory.start().expect("inventory starts again");
    saga.wait("the poison event to be parked", || {
        inventory(&saga, "SELECT count(*) FROM kit_parked_events") == 1
    })
    .await;
    saga.wait("the five good orders", || {
        inventory(
            &saga,
            &format!("SELECT count(*) FROM inventory.reservations WHERE product_id = '{c}'"),
        ) == 5
    })
    .await;
    assert_eq!(saga.stock(c).await, (5, 5));
}
