//! The platform's HTTP API as one OpenAPI 3.1 document (docs/openapi.json),
//! made from the code: each service describes its own routes with its
//! handlers' request and response types (`teipsum_<service>::openapi()`,
//! utoipa), and [`document`] merges them, with paths as the edge routes them
//! (the services mount the very paths nginx passes on), and adds what the
//! kit decides for every route alike:
//!
//! - the bearer JWT scheme; a route that takes a token answers
//!   `401 UNAUTHORIZED` without a valid one, and a route whose security
//!   requirement names the `admin` role answers `403 FORBIDDEN` to other
//!   roles (`teipsum_kit::http::{authenticated, admin}`);
//! - a route with a JSON body answers `413 PAYLOAD_TOO_LARGE` above the body
//!   limit and `415 UNSUPPORTED_MEDIA_TYPE` for a body that is not
//!   `application/json` (`teipsum_kit::http::json_body`), and `400
//!   INVALID_INPUT` for one that does not parse;
//! - nginx answers `414` to a request line above its buffers;
//! - every route answers `503 UNAVAILABLE` while its database is down, and
//!   the edge answers `502`/`504 UNAVAILABLE` while the service is down or
//!   slow (`teipsum_spec::policy::edge_errors`).
//!
//! Every error has the body `Error` (`teipsum_kit::http::ErrorBody`).

use serde_json::{Map, Value, json};

/// The name of the security scheme in the document.
pub const BEARER: &str = "bearer";

/// The role whose name in a route's security requirement marks it as for
/// administrators only.
pub const ADMIN_ROLE: &str = "admin";

/// The six services' documents, by service name as the spec names them.
pub fn services() -> Vec<(&'static str, utoipa::openapi::OpenApi)> {
    vec![
        ("admin-product", teipsum_admin_product::openapi()),
        ("auth", teipsum_auth::openapi()),
        ("catalog", teipsum_catalog::openapi()),
        ("inventory", teipsum_inventory::openapi()),
        ("order", teipsum_order::openapi()),
        ("user", teipsum_user::openapi()),
    ]
}

/// What each service's tag says.
const TAGS: [(&str, &str); 6] = [
    (
        "admin-product",
        "The product catalogue as administrators edit it, with optimistic concurrency (`ETag`/`If-Match`).",
    ),
    (
        "auth",
        "Accounts and sessions: registration, login, refresh token rotation, logout.",
    ),
    (
        "catalog",
        "The storefront's products: public, read-only, cached for 5 seconds.",
    ),
    ("inventory", "Stock levels, for administrators."),
    (
        "order",
        "A customer's orders: placement (with `Idempotency-Key`), listing, cancellation.",
    ),
    ("user", "Profiles."),
];

/// The HTTP methods an OpenAPI path item can hold, lowercase.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The merged document as JSON.
pub fn document() -> Value {
    let mut merged = utoipa::openapi::OpenApi::default();
    for (service, mut api) in services() {
        // Operation ids are the handlers' names, unique within a service
        // only: `order_list`, `admin_product_list`.
        for item in api.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if let Some(id) = &operation.operation_id {
                    operation.operation_id = Some(format!("{}_{id}", service.replace('-', "_")));
                }
            }
        }
        merged.merge(api);
    }
    let mut doc = serde_json::to_value(&merged).expect("an OpenAPI document serializes");
    doc["info"] = json!({
        "title": "TeIpsum",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "The shop's HTTP API through its edge (nginx), generated from the services' code \
            (crates/openapi; docs/api.md explains it in prose). Everything is JSON; every error is \
            `{\"error\": \"CODE\", \"message\": \"a sentence\"}`. Every response of a service carries \
            `X-Request-Id`. Money is integer minor units plus an ISO 4217 currency. Lists are paginated \
            with an opaque `cursor`: pass a page's `next_cursor` to get the next one.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
    });
    doc["servers"] = json!([{"url": "/", "description": "The shop's own host, through nginx"}]);
    doc["tags"] = Value::Array(
        TAGS.iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect(),
    );
    let components = doc["components"]
        .as_object_mut()
        .expect("the services' documents have components");
    components.insert(
        "securitySchemes".to_owned(),
        json!({
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The `access_token` of `POST /api/auth/login` or `/api/auth/refresh`: an EdDSA JWT \
                    (`typ: at+jwt`) valid for at most 15 minutes. A route whose requirement names the \
                    `admin` role is for administrators only (`403 FORBIDDEN` for a customer).",
            }
        }),
    );
    let schemas = doc["components"]["schemas"].clone();
    for item in doc["paths"]
        .as_object_mut()
        .expect("the document has paths")
        .values_mut()
    {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method) {
                complete(operation, &schemas);
            }
        }
    }
    doc
}

/// The document as the committed text of docs/openapi.json.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("JSON serializes");
    text.push('\n');
    text
}

/// The roles a route's security requirements name: `None` for a public
/// route, `Some([])` for any valid token, `Some(["admin"])` for admins.
pub fn roles(operation: &Value) -> Option<Vec<String>> {
    let requirements = operation.get("security")?.as_array()?;
    Some(
        requirements
            .iter()
            .filter_map(|r| r.get(BEARER))
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// An error answer with `description`, in the `Error` shape.
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

/// Add the answers every route of its kind gives (see the crate's docs),
/// unless the route documents them itself.
fn complete(operation: &mut Value, schemas: &Value) {
    for parameter in operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        // A parameter's schema is spelt out (`sort`'s enum), not a
        // reference: what clients and fuzzers read of a parameter is its own.
        if let Some(name) = parameter["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            parameter["schema"] = schemas[name].clone();
        }
        // A parameter is absent or a string: never JSON's null.
        if let Some(types) = parameter["schema"]["type"].as_array_mut() {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                parameter["schema"]["type"] = types[0].clone();
            }
        }
    }
    let roles = roles(operation);
    let has_body = operation.get("requestBody").is_some();
    let responses: &mut Map<String, Value> = operation["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    // nginx refuses a request line above `large_client_header_buffers`
    // (8 KiB) before any location is chosen, with its own page.
    responses.entry("414".to_owned()).or_insert_with(|| {
        json!({"description": "The request line is too long for nginx (above 8 KiB); nginx's own page, not JSON"})
    });
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if let Some(roles) = &roles {
        add(
            "401",
            "`UNAUTHORIZED`: no access token, or one that is invalid or expired",
        );
        if roles.iter().any(|r| r == ADMIN_ROLE) {
            add("403", "`FORBIDDEN`: administrators only");
        }
    }
    if has_body {
        add("400", "`INVALID_INPUT`: the body is not acceptable");
        add(
            "413",
            "`PAYLOAD_TOO_LARGE`: the body is above the service's limit or nginx's `client_max_body_size`",
        );
        add(
            "415",
            "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`",
        );
    }
    add("502", "`UNAVAILABLE`: nginx cannot reach the service");
    add(
        "503",
        "`UNAVAILABLE`: the service's database does not answer, or nginx finds the service down",
    );
    add("504", "`UNAVAILABLE`: the service answers too slowly");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_error_shape_and_bearer_tokens() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let error = &doc["components"]["schemas"]["Error"];
        assert_eq!(error["required"], json!(["error", "message"]), "{error}");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
    }

    /// What schemathesis found the document lacked on its first run
    /// (scripts/api-fuzz.sh): nginx's `414` for a long query string, and the
    /// placement rate limit's `429`, which covers every `POST` under
    /// `/api/orders/`, cancelling included.
    #[test]
    fn the_edges_own_answers_are_documented() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation["responses"].get("414").is_some(),
                    "{method} {path}"
                );
                if method == "post" && path.starts_with("/api/orders/") {
                    assert!(
                        operation["responses"].get("429").is_some(),
                        "{method} {path}: nginx's placement rate limit"
                    );
                }
            }
        }
    }

    #[test]
    fn token_routes_answer_401_and_admin_routes_403() {
        let doc = document();
        let mut admin = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                match roles(operation) {
                    None => {
                        assert!(responses.get("401").is_none() || path.starts_with("/api/auth/"))
                    }
                    Some(roles) => {
                        assert!(responses.get("401").is_some(), "{method} {path}");
                        let is_admin = roles.iter().any(|r| r == ADMIN_ROLE);
                        admin += usize::from(is_admin);
                        assert_eq!(responses.get("403").is_some(), is_admin, "{method} {path}");
                        assert_eq!(
                            is_admin,
                            path.starts_with("/api/admin/") || path == "/api/users/{id}",
                            "{method} {path}: admin routes are those under /api/admin/ and reading another user"
                        );
                    }
                }
            }
        }
        assert_eq!(admin, 9, "5 product, 3 inventory and 1 user route");
    }
}
