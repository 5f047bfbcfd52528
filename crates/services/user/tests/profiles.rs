//! User profiles end to end: who may read which profile, forged tokens,
//! parked events replayed from the command line; the real `teipsum-user`
//! fed by the real `teipsum-auth` on the identity stack.

#[path = "../../auth/tests/stack/mod.rs"]
mod stack;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::{Stack, error_of};
use teipsum_conventions::env as vars;

#[tokio::test(flavor = "multi_thread")]
async fn every_authorization_rule_holds() {
    let stack = Stack::start();
    let ana = stack.register("ana@teipsum.test").await;
    stack.register("bob@teipsum.test").await;
    let boss = stack.register("boss@teipsum.test").await;
    assert_eq!(
        boss["role"], "customer",
        "registration never makes an admin"
    );
    let (promoted, output) = stack.promote_admin("boss@teipsum.test");
    assert!(promoted, "{output}");
    let bob_token = stack.login("bob@teipsum.test").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let boss_token = stack.login("boss@teipsum.test").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ana_path = format!("/api/users/{}", ana["id"].as_str().unwrap());

    assert_eq!(
        error_of(stack.user_get("/api/users/me", None).await).await,
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED".into())
    );
    assert_eq!(
        error_of(stack.user_get(&ana_path, None).await).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(stack.user_get(&ana_path, Some(&bob_token)).await).await,
        (StatusCode::FORBIDDEN, "FORBIDDEN".into()),
        "a customer cannot read someone else's profile"
    );
    // Bob's own profile is his, not Ana's.
    let bob = stack.profile(&bob_token).await;
    assert_ne!(bob["id"], ana["id"]);
    // An admin can look anyone up, once the profile exists.
    let ana_tokens = stack.login("ana@teipsum.test").await;
    stack
        .profile(ana_tokens["access_token"].as_str().unwrap())
        .await;
    let seen = stack.user_get(&ana_path, Some(&boss_token)).await;
    assert_eq!(seen.status(), StatusCode::OK);
    assert_eq!(
        seen.json::<Value>().await.unwrap()["email"],
        "ana@teipsum.test"
    );
    assert_eq!(
        error_of(
            stack
                .user_get("/api/users/not-a-uuid", Some(&boss_token))
                .await
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let malformed = stack
        .http
        .get(format!("{}/api/users/me", stack.user.base))
        .header("authorization", "Basic YWxhZGRpbjpvcGVu")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(malformed).await.0, StatusCode::UNAUTHORIZED);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_of_every_classic_kind_are_rejected() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    let real = stack.login("ana@teipsum.test").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload_of = |token: &str| -> Value {
        use base64::Engine;
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let claims = payload_of(&real);
    let ed = jsonwebtoken::EncodingKey::from_ed_pem(stack.private_pem.as_bytes()).unwrap();
    let sign = |header: jsonwebtoken::Header, claims: &Value, key: &jsonwebtoken::EncodingKey| {
        jsonwebtoken::encode(&header, claims, key).unwrap()
    };
    let eddsa = || {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.typ = Some("at+jwt".into());
        h
    };
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        sign(eddsa(), &c, &ed)
    };
    let now = teipsum_kit::jwt::now();
    let mut admin_claims = claims.clone();
    admin_claims["role"] = "admin".into();
    let parts: Vec<&str> = real.split('.').collect();
    let forgeries = vec![
        (
            "alg none",
            format!("{}.{}.", b64(br#"{"alg":"none","typ":"at+jwt"}"#), parts[1]),
        ),
        ("HS256 keyed with the public key", {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.typ = Some("at+jwt".into());
            sign(
                h,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(stack.public_pem.as_bytes()),
            )
        }),
        ("wrong audience", with("aud", "other".into())),
        ("wrong issuer", with("iss", "https://evil.test".into())),
        ("expired", with("exp", (now - 300).into())),
        ("not yet valid", with("nbf", (now + 300).into())),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&serde_json::to_vec(&admin_claims).unwrap()),
                parts[2]
            ),
        ),
        ("wrong typ", {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            h.typ = Some("JWT".into());
            sign(h, &claims, &ed)
        }),
        ("no sub", {
            let mut c = claims.clone();
            c.as_object_mut().unwrap().remove("sub");
            sign(eddsa(), &c, &ed)
        }),
    ];
    // The real token works.
    stack.profile(&real).await;
    for (what, token) in forgeries {
        let r = stack.user_get("/api/users/me", Some(&token)).await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED".into()),
            "{what}"
        );
    }
}

/// `teipsum-user events ...` as an operator runs it on the host.
fn events_command(stack: &Stack, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(
        teipsum_testkit::binary("teipsum-user").expect("the binary is built"),
    )
    .args(args)
    .env(vars::DATABASE, stack.pg.conninfo("teipsum_user"))
    .env(
        vars::TOPIC_PRODUCERS,
        teipsum_testkit::plan_setting("user", vars::TOPIC_PRODUCERS).expect("user consumes"),
    )
    .output()
    .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_events_are_listed_and_replayed_from_the_command_line() {
    let stack = Stack::start();
    let user_id = uuid::Uuid::new_v4();
    let event = teipsum_kit::events::Envelope::new(
        "auth",
        "user-registered",
        1,
        user_id,
        json!({"user_id": user_id, "email": "late@teipsum.test", "display_name": "Late", "role": "customer"}),
    );
    // Parked by an earlier build, and a message that is no event at all.
    let payload = serde_json::to_string(&event).unwrap();
    stack
        .pg
        .psql(
            "teipsum_user",
            &format!(
                "INSERT INTO kit_parked_events (consumer, topic, partition, \"offset\", key, payload, error) VALUES \
                 ('user', 'user-registered', 0, 3, '{user_id}', convert_to('{payload}', 'UTF8'), 'a bug of the old build'), \
                 ('user', 'user-registered', 1, 4, NULL, convert_to('garbage', 'UTF8'), 'not an event envelope')"
            ),
        )
        .unwrap();
    let (ok, listed) = events_command(&stack, &["events", "parked"]);
    assert!(ok, "{listed}");
    assert!(listed.contains(&event.id.to_string()), "{listed}");
    assert!(listed.contains("user-registered[0]@3"), "{listed}");
    assert!(listed.contains("a bug of the old build"), "{listed}");

    let (ok, said) = events_command(&stack, &["events", "replay", "--id", &event.id.to_string()]);
    assert!(ok, "{said}");
    assert!(said.contains("applied"), "{said}");
    let profiles = format!("SELECT count(*) FROM profiles WHERE id = '{user_id}'");
    assert_eq!(stack.count("teipsum_user", &profiles), 1);

    // The rest: the garbage stays parked, and the command says so.
    let (ok, said) = events_command(&stack, &["events", "replay", "--all"]);
    assert!(!ok, "{said}");
    assert!(said.contains("still failing"), "{said}");
    assert_eq!(
        stack.count("teipsum_user", "SELECT count(*) FROM kit_parked_events"),
        1
    );
    assert_eq!(stack.count("teipsum_user", &profiles), 1, "applied once");
    let (ok, said) = events_command(&stack, &["events", "replay"]);
    assert!(!ok && said.contains("usage"), "{said}");
}
