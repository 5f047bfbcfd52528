//! HTTP with warp: JSON bodies, errors, authentication, request ids, serving.
//!
//! Every failure a client can see is an [`ApiError`]: a status and a stable
//! JSON body `{"error": "OUT_OF_STOCK", "message": "..."}`. Handlers return
//! their own error enums; implementing [`ErrorResponse`] maps them. Internal
//! errors are logged with their whole cause chain and answered with a
//! generic message; their text never reaches the client.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use http::{HeaderValue, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;
use warp::{Filter, Rejection, Reply, reject::Reject};

use crate::jwt::{Claims, Role, Verifier};

/// Header carrying the request id (nginx sets it to `$request_id`).
pub const REQUEST_ID: &str = "x-request-id";

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`OUT_OF_STOCK`).
    pub code: &'static str,
    /// A sentence for humans.
    pub message: String,
}

impl Reject for ApiError {}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with code `INVALID_INPUT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
    }

    /// 404 with code `NOT_FOUND`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    /// 500: logs `error` with its cause chain and tells the client nothing more.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = %crate::db::describe(error.as_ref()), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "something went wrong on our side; it has been logged",
        )
    }

    /// 503: a dependency is unavailable.
    pub fn unavailable(error: &anyhow::Error) -> Self {
        tracing::warn!(error = %crate::db::describe(error.as_ref()), "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the service cannot answer right now; try again shortly",
        )
    }

    /// As a warp rejection.
    pub fn reject(self) -> Rejection {
        warp::reject::custom(self)
    }
}

/// Expected failures of a handler, mapped to what the client sees.
pub trait ErrorResponse: std::error::Error {
    /// The status and stable code.
    fn response(&self) -> (StatusCode, &'static str);
}

/// The response for an unexpected error: 503 when the database is
/// unreachable (retrying later helps), 400 when PostgreSQL refused a value
/// (SQLSTATE class 22, a data exception: a NUL in text, a number out of
/// range; a check the handler missed, but the client's input all the same),
/// 500 otherwise.
pub fn unexpected_response(error: &anyhow::Error) -> (StatusCode, &'static str) {
    match error.downcast_ref::<crate::db::DbError>() {
        Some(crate::db::DbError::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        }
        _ if is_data_exception(error.as_ref()) => (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
    }
}

/// What the client reads for a data exception: PostgreSQL's own text
/// names tables and types, so it stays in the log.
const DATA_EXCEPTION: &str = "a value in the request is not acceptable";

/// Whether PostgreSQL refused a value somewhere in `error`'s cause chain
/// (SQLSTATE class 22).
fn is_data_exception(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        let db = e
            .downcast_ref::<postgres::Error>()
            .and_then(postgres::Error::as_db_error)
            .or_else(|| e.downcast_ref::<postgres::error::DbError>());
        db.is_some_and(|db| db.code().code().starts_with("22"))
    })
}

/// The message of a 4xx: the error's own, unless it is a data exception.
fn client_message(error: &(dyn std::error::Error + 'static)) -> String {
    if is_data_exception(error) {
        tracing::info!(error = %format!("{error}{}", source_chain(error)), "a value was refused by the database");
        DATA_EXCEPTION.to_owned()
    } else {
        error.to_string()
    }
}

/// `From` conversions of the errors handlers meet (PostgreSQL, the pool,
/// JSON) into the `Unexpected(anyhow::Error)` variant of a handler's error enum.
#[macro_export]
macro_rules! unexpected_errors {
    ($error:ty) => {
        impl From<postgres::Error> for $error {
            fn from(e: postgres::Error) -> Self {
                Self::Unexpected(e.into())
            }
        }
        impl From<$crate::db::DbError> for $error {
            fn from(e: $crate::db::DbError) -> Self {
                Self::Unexpected(e.into())
            }
        }
    };
}

/// What the client sees of a handler's error: its status and code with its
/// message, or, for 5xx, a generic message while the cause chain is logged.
/// The one mapping behind [`error_response`], [`answer`] and [`reject`].
fn client_error<E: ErrorResponse + 'static>(error: &E) -> ApiError {
    let (status, code) = error.response();
    if status.is_server_error() {
        let chain = anyhow::Error::new(SendableError(error.to_string(), source_chain(error)));
        return if status == StatusCode::SERVICE_UNAVAILABLE {
            ApiError::unavailable(&chain)
        } else {
            ApiError::internal(&chain)
        };
    }
    ApiError::new(status, code, client_message(error))
}

/// The response to a handler's error (see [`ErrorResponse`]).
pub fn error_response<E: ErrorResponse + 'static>(error: E) -> warp::reply::Response {
    let api = client_error(&error);
    error_reply(api.status, api.code, &api.message)
}

/// A handler's result as the response: routing stops at the handler that
/// matched, whether it succeeded or not (`.then(handler).map(answer)`).
pub fn answer<E: ErrorResponse + 'static>(
    result: Result<warp::reply::Response, E>,
) -> warp::reply::Response {
    result.unwrap_or_else(error_response)
}

/// A handler error as a rejection, for filters (authentication, parsing)
/// that decide before a handler runs.
pub fn reject<E: ErrorResponse + 'static>(error: E) -> Rejection {
    client_error(&error).reject()
}

/// The causes of `error`, PostgreSQL's with SQLSTATE, message and detail.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut chain = String::new();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&crate::db::describe_link(s));
        source = s.source();
    }
    chain
}

#[derive(Debug)]
struct SendableError(String, String);
impl std::fmt::Display for SendableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.0, self.1)
    }
}
impl std::error::Error for SendableError {}

/// The body of every error answer, `{"error": "INVALID_INPUT", "message":
/// "..."}` (`Error` in docs/openapi.json).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// Stable machine-readable code (`INVALID_INPUT`, `NOT_FOUND`, `UNAUTHORIZED` ...).
    pub error: &'a str,
    /// A sentence for humans; its wording may change.
    pub message: &'a str,
}

/// A JSON error response.
pub fn error_reply(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let mut response = warp::reply::json(&ErrorBody {
        error: code,
        message,
    })
    .into_response();
    *response.status_mut() = status;
    response
}

/// The one rejection handler: every rejection becomes a JSON error.
pub async fn handle_rejection(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, code, message) = if let Some(e) = rejection.find::<ApiError>() {
        (e.status, e.code, e.message.clone())
    } else if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such resource".to_owned(),
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large".to_owned(),
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "LENGTH_REQUIRED",
            "send a Content-Length".to_owned(),
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send application/json".to_owned(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        (
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            format!("missing header {}", e.name()),
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        (
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            format!("invalid header {}", e.name()),
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        (
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "invalid query string".to_owned(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        // Last: another route of the same path adds this to every rejection,
        // and a more specific reason above is the real one.
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "method not allowed here".to_owned(),
        )
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "something went wrong on our side; it has been logged".to_owned(),
        )
    };
    Ok(error_reply(status, code, &message))
}

/// A JSON body of at most `limit` bytes, parsed into `T`; malformed input is
/// a 400 naming what is wrong (`missing field `email` at line 1 column 2`).
pub fn json_body<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::body::content_length_limit(limit))
        .and(warp::body::bytes())
        .and_then(
            |content_type: Option<String>, bytes: bytes::Bytes| async move {
                if let Some(ct) = content_type {
                    let essence = ct
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    if essence != "application/json" {
                        return Err(ApiError::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "UNSUPPORTED_MEDIA_TYPE",
                            "send the body as application/json",
                        )
                        .reject());
                    }
                }
                serde_json::from_slice::<T>(&bytes)
                    .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")).reject())
            },
        )
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Verified claims of the access token.
    pub claims: Claims,
}

impl Caller {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.claims.role == Role::Admin
    }
}

/// Requires `Authorization: Bearer <access token>`; 401 otherwise.
pub fn authenticated(
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let verifier = verifier.clone();
        async move {
            let unauthorized = |message: &str| {
                ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).reject()
            };
            let header = header.ok_or_else(|| {
                unauthorized("send an access token: Authorization: Bearer <token>")
            })?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
            match verifier.verify(token.trim()) {
                Ok(claims) => Ok(Caller { claims }),
                Err(e) => {
                    tracing::info!(reason = %e, "rejected an access token");
                    Err(unauthorized("the access token is invalid or expired"))
                }
            }
        }
    })
}

/// Requires an administrator; 401 without a token, 403 for other roles.
pub fn admin(
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    authenticated(verifier).and_then(|caller: Caller| async move {
        if caller.is_admin() {
            Ok(caller)
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "administrators only").reject())
        }
    })
}

/// A JSON reply with `status`.
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> warp::reply::Response {
    let mut response = warp::reply::json(body).into_response();
    *response.status_mut() = status;
    response
}

/// A valid request id: short, printable, no spaces.
fn usable_request_id(value: &HeaderValue) -> bool {
    value.len() <= 128
        && value
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Serve `filter` on `listener` until `shutdown` resolves, then drain.
///
/// Every request gets an id (the `X-Request-Id` nginx sends, or a new one),
/// a tracing span carrying it, and the id back in the response.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    filter: F,
    shutdown: impl std::future::Future<Output = ()> + Send,
) where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    serve_observed(listener, filter, None, shutdown).await
}

/// [`serve`], measuring every request in `metrics` when given: its
/// duration by method, route template and status, and the requests in flight.
pub(crate) async fn serve_observed<F>(
    listener: tokio::net::TcpListener,
    filter: F,
    metrics: Option<crate::metrics::HttpMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    use hyper_util::{
        rt::{TokioExecutor, TokioIo},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
    };
    let service = warp::service(filter);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let metrics = metrics.clone();
        let connection =
            hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                let in_flight = metrics
                    .as_ref()
                    .map(|m| m.begin(request.method(), request.uri().path()));
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .filter(|v| usable_request_id(v))
                    .cloned()
                    .unwrap_or_else(|| {
                        HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                            .expect("a uuid is a header value")
                    });
                request.headers_mut().insert(REQUEST_ID, id.clone());
                let span = tracing::info_span!(
                    "request",
                    request_id = %id.to_str().unwrap_or("-"),
                    method = %request.method(),
                    path = %request.uri().path(),
                );
                let mut service = service.clone();
                let started = Instant::now();
                async move {
                    let result = tower_service::Service::call(&mut service, request).await;
                    if let (Some(in_flight), Ok(response)) = (&in_flight, &result) {
                        in_flight.answered(response.status().as_u16());
                    }
                    drop(in_flight);
                    if let Ok(response) = &result {
                        tracing::info!(
                            status = response.status().as_u16(),
                            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                            "answered"
                        );
                    }
                    result.map(|mut response| {
                        response.headers_mut().insert(REQUEST_ID, id);
                        response
                    })
                }
                .instrument(span)
            });
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), connection);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How many items a page of a list has: the `limit` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(i64);

impl PageLimit {
    /// Without `limit=`.
    pub const DEFAULT: i64 = 20;
    /// The largest page: bounds the work and the size of one (cached) answer.
    pub const MAX: i64 = 100;

    /// From the `limit` query parameter, if given.
    pub fn parse(raw: Option<&str>) -> Result<Self, crate::domain::Invalid> {
        let Some(raw) = raw else {
            return Ok(PageLimit(Self::DEFAULT));
        };
        raw.parse::<i64>()
            .ok()
            .filter(|n| (1..=Self::MAX).contains(n))
            .map(PageLimit)
            .ok_or_else(|| {
                crate::domain::Invalid(format!("limit must be an integer from 1 to {}", Self::MAX))
            })
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two real PostgreSQL errors: a duplicate key, with its detail.
    fn duplicate_keys() -> (teipsum_testkit::Postgres, [postgres::Error; 2]) {
        let pg = teipsum_testkit::Postgres::start().expect("PostgreSQL starts");
        let db = crate::db::Db::new(
            &pg.create_database("errors")
                .expect("the database is created"),
            1,
            None,
        )
        .unwrap();
        let mut conn = db.get().unwrap();
        conn.batch_execute("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (1)")
            .unwrap();
        let mut fail = || conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
        let errors = [fail(), fail()];
        (pg, errors)
    }

    #[test]
    fn logged_errors_carry_the_sqlstate_message_and_detail() {
        #[derive(Debug, thiserror::Error)]
        enum PlaceError {
            #[error(transparent)]
            Unexpected(#[from] anyhow::Error),
        }
        let (_pg, [error, second]) = duplicate_keys();
        let handler_error = PlaceError::from(anyhow::Error::new(error));
        let logged = format!("{handler_error}{}", source_chain(&handler_error));
        for part in ["23505", "duplicate key value", "Key (k)=(1) already exists"] {
            assert!(logged.contains(part), "{part} missing from: {logged}");
        }
        let relay_style = crate::db::describe(&crate::db::DbError::from(second));
        assert!(
            relay_style.starts_with("db error: ERROR 23505 duplicate key value"),
            "{relay_style}"
        );
        assert!(
            relay_style.contains("(detail: Key (k)=(1) already exists.)"),
            "{relay_style}"
        );
    }

    #[test]
    fn page_limits_are_1_to_100() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "ten", "1e3", ""] {
            assert!(PageLimit::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_ids_from_clients_are_checked() {
        assert!(usable_request_id(&HeaderValue::from_static("0f9e8d7c6b5a")));
        assert!(!usable_request_id(&HeaderValue::from_static("a b")));
        assert!(!usable_request_id(
            &HeaderValue::from_str(&"x".repeat(200)).unwrap()
        ));
    }
}
