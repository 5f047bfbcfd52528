//! The services' log lines join: one order's lines are found in every
//! service that handled it by its `order_id`, the request that placed it by
//! the `request_id` nginx gave it, and each event by its `event_id`, as an
//! operator finds them in Loki (`| json | order_id="<id>"`).

use reqwest::Method;
use serde_json::json;
use teipsum_dev::Stack;
use teipsum_e2e::{Shop, options, root};

/// The lines of `service` that contain every one of `needles`.
fn lines_with(stack: &Stack, service: &str, needles: &[&str]) -> Vec<String> {
    stack
        .service(service)
        .recent_logs()
        .into_iter()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .collect()
}

/// The `event_id` of the line of `service` that says `what` about
/// `order_id` while handling an event of `kind` (waiting for it a while:
/// the consumer logs after its commit).
async fn event_line(
    stack: &Stack,
    service: &str,
    order_id: &str,
    what: &str,
    kind: &str,
) -> String {
    for _ in 0..100 {
        let lines = lines_with(stack, service, &[&format!("order_id={order_id}"), what]);
        if let Some(line) = lines.iter().find(|l| l.contains(&format!("kind={kind}"))) {
            let event_id = line
                .split("event_id=")
                .nth(1)
                .and_then(|rest| rest.split([' ', '}']).next())
                .unwrap_or_else(|| panic!("{service}: no event_id in {line}"));
            assert!(
                uuid::Uuid::parse_str(event_id).is_ok(),
                "{service}: event_id {event_id} in {line}"
            );
            return event_id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{service} logged no `{what}` for order {order_id} handling {kind}: {:#?}",
        lines_with(stack, service, &[order_id])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_orders_lines_join_across_the_services_by_its_ids() {
    let spec = teipsum_spec::load_spec(&root().join("config.ncl")).unwrap();
    let plan = spec.plans["prod"].clone();
    let mut options = options(&plan, None, vec![]);
    options.show_logs = true;
    let stack = Stack::start(&plan, &options)
        .unwrap_or_else(|e| panic!("the stack does not start: {}", teipsum_dev::chain(&e)));
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let ana = shop.account("ana@example.org").await;
    let mug = shop
        .create_product(&admin, "Logged Mug", "L-MUG", 700)
        .await;
    shop.set_stock(&admin, &mug, 5).await;
    // Placed once the order service knows the product.
    let _ = shop.place_order(&ana, &mug, 1).await;
    let r = shop
        .call(
            Method::POST,
            "/api/orders/",
            Some(&ana),
            Some(json!({"items": [{"product_id": mug, "quantity": 1}]})),
        )
        .await;
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let order: serde_json::Value = r.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    shop.until(
        &format!("/api/orders/{order_id}"),
        Some(&ana),
        "a decision",
        |_, b| b["status"] == "CONFIRMED",
    )
    .await;
    // The request that placed it: nginx's id, the route, the order.
    let placed = lines_with(
        &stack,
        "order",
        &[&format!("request_id={request_id}"), "order placed"],
    );
    assert!(
        placed
            .iter()
            .any(|l| l.contains(&format!("order_id={order_id}"))),
        "order placed with request_id {request_id}: {placed:#?}"
    );
    // Each service that handled it, by the order's id, with the event it
    // handled: inventory reserved on order-placed, order confirmed on
    // inventory's stock-reserved.
    let reserved = event_line(
        &stack,
        "inventory",
        &order_id,
        "stock reserved",
        "order-placed",
    )
    .await;
    let confirmed = event_line(
        &stack,
        "order",
        &order_id,
        "order confirmed",
        "stock-reserved",
    )
    .await;
    assert_ne!(reserved, confirmed, "two events, two ids");

    // Stopped (SIGTERM, as systemd stops it), the order service ends its
    // expiry sweeper before its pool closes: no panic on the way out.
    assert!(stack.service("order").stop(), "order stops on SIGTERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let last = stack.service("order").recent_logs();
    assert!(last.iter().any(|l| l.contains(" stopped")), "{last:#?}");
    let panics: Vec<&String> = last.iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "{panics:#?}");
    stack.stop();
}
