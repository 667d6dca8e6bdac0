//! The admin dashboard: its own listener (default `127.0.0.1:3200/dashboard`), nothing of
//! it on the proxy port.
//!
//! Pages: an overview of traffic, latency, errors, tokens, cost and the cost saved against
//! the strongest model, how decisions were made and the judge's health; the models and
//! deployments with live weights, switches and circuit resets; routing quality per model ×
//! domain and × language; the latest decisions with their reasons; the feedback. English
//! and Chinese. The server renders only the login page and a shell; the browser draws the
//! rest from the [JSON API](api), refreshing it live, with a small chart script compiled
//! into the binary along with every other file.
//!
//! Access is default-deny: one middleware ([`gate`]) lets through the login page and its
//! stylesheet and nothing else without a session. Sessions are random tokens in an
//! `HttpOnly`, `SameSite=Strict` cookie; every change needs the session's CSRF token in
//! `x-csrf-token`; failed logins are limited per client address. With no password
//! configured, every request gets a page saying how to set one.

mod api;
mod assets;
mod auth;
mod control;
pub mod credentials;
pub mod limiter;
pub mod pages;
pub mod session;
pub mod summary;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use credentials::{Credentials, CredentialsError, hash_password};

use crate::app::Gateway;
use crate::judge::{Judge, JudgeStatus};
use limiter::LoginLimiter;
use pages::Lang;
use session::{Session, Sessions};

/// Where the dashboard lives on its listener.
pub const BASE: &str = "/dashboard";
/// The session cookie.
pub const SESSION_COOKIE: &str = "lr_session";
/// The header every change must carry, holding the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest body a dashboard request may have; changes are a few bytes of JSON.
const MAX_BODY: usize = 16 * 1024;

/// The dashboard for one gateway.
pub struct Dashboard {
    gateway: Gateway,
    credentials: Option<Credentials>,
    judge: Option<Arc<Judge>>,
}

impl Dashboard {
    /// A dashboard that admits `credentials`; with `None`, it only says how to set them.
    pub fn new(gateway: Gateway, credentials: Option<Credentials>) -> Dashboard {
        Dashboard { gateway, credentials, judge: None }
    }

    /// Shows this judge's status on the overview instead of the gateway's own (for an
    /// embedding application that runs its judge outside the gateway).
    pub fn with_judge(mut self, judge: Arc<Judge>) -> Dashboard {
        self.judge = Some(judge);
        self
    }

    /// The dashboard's routes. Serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so that failed logins are
    /// counted per client address (without it, all clients share one count).
    pub fn router(self) -> Router {
        let state = DashboardState(Arc::new(Shared {
            gateway: self.gateway,
            credentials: self.credentials.map(Arc::new),
            judge: self.judge,
            sessions: Sessions::default(),
            limiter: LoginLimiter::default(),
        }));
        Router::new()
            .route("/", get(|| async { Redirect::to(BASE) }))
            .route(BASE, get(auth::shell))
            .route("/dashboard/", get(auth::shell))
            .route("/dashboard/{page}", get(auth::shell_page))
            .route("/dashboard/login", get(auth::login_page).post(auth::login))
            .route("/dashboard/logout", post(auth::logout))
            .route("/dashboard/assets/{name}", get(asset))
            .nest("/dashboard/api", api::router())
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(state.clone(), gate))
            .layer(middleware::from_fn(security_headers))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(state)
    }
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct DashboardState(Arc<Shared>);

pub(crate) struct Shared {
    gateway: Gateway,
    credentials: Option<Arc<Credentials>>,
    judge: Option<Arc<Judge>>,
    sessions: Sessions,
    limiter: LoginLimiter,
}

impl std::ops::Deref for DashboardState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// The judge's status: the one attached to the dashboard, else the gateway's; `None`
    /// when there is none ("judge off").
    pub(crate) fn judge_status(&self) -> Option<JudgeStatus> {
        self.judge.as_ref().or(self.gateway.judge()).map(|j| j.status())
    }
}

/// The value of one cookie.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// The client's address, as the listener saw it.
pub(crate) fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// A dashboard API call that cannot be answered: its status, a stable `code` for scripts and
/// a message for the operator. Answers as `{"error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Failure {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Failure {
        Failure { status, code, message: message.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        json_error(self.status, self.code, self.message)
    }
}

/// A JSON error body: `{"error": {"code", "message"}}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message.into()}})))
        .into_response()
}

/// Paths served without a session: the login page (and its form) and its stylesheet.
fn is_public(method: &Method, path: &str) -> bool {
    let reading = method == Method::GET || method == Method::HEAD;
    if path == "/dashboard/login" {
        return reading || method == Method::POST;
    }
    reading && is_public_asset(path)
}

fn is_public_asset(path: &str) -> bool {
    path.strip_prefix("/dashboard/assets/").and_then(assets::find).is_some_and(|a| a.public)
}

/// Default-deny access control for every route, the fallback included.
///
/// - No credentials configured: the set-up page (API: 503), whatever was asked.
/// - Public paths pass (login checks its own form token).
/// - No live session: pages redirect to the login page, the API answers 401.
/// - A change (any method but GET/HEAD) also needs the session's CSRF token and, when the
///   browser says where it comes from, the same origin.
async fn gate(State(state): State<DashboardState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let is_api = path.starts_with("/dashboard/api/") || path == "/dashboard/api";
    if state.credentials.is_none() {
        if is_public_asset(&path) {
            return next.run(request).await;
        }
        if is_api {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "The dashboard has no password: set ADMIN_PASSWORD (or ADMIN_PASSWORD_HASH) and restart.",
            );
        }
        let page = pages::setup(Lang::of(request.headers()));
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            no_store(axum::response::Html(page).into_response()),
        )
            .into_response();
    }
    let changing = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changing && !same_origin(request.headers()) {
        return json_error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "Changes must come from the dashboard's own pages.",
        );
    }
    if is_public(request.method(), &path) {
        return next.run(request).await;
    }
    let session = cookie(request.headers(), SESSION_COOKIE)
        .and_then(|token| state.sessions.get(&token, Instant::now()));
    let Some(session) = session else {
        if is_api || changing {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Log in to the dashboard first.",
            );
        }
        return Redirect::to("/dashboard/login").into_response();
    };
    if changing {
        let presented =
            request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !session.csrf_matches(presented) {
            return json_error(
                StatusCode::FORBIDDEN,
                "csrf",
                format!("Missing or wrong `{CSRF_HEADER}` header: reload the page and try again."),
            );
        }
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Whether a changing request comes from this dashboard's own pages, as far as the browser
/// tells: `Sec-Fetch-Site` must not be cross-site, and an `Origin` must name this host.
/// Clients that send neither (curl, scripts) are judged by the CSRF token alone.
fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site") | Some("same-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host))
}

/// Headers every dashboard response carries: a content security policy that allows only
/// the dashboard's own scripts and styles, no framing, no sniffing, no referrer to others.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it the browser sends `Origin: null` with the login form,
    // which the origin check must refuse. `same-origin` still tells other sites nothing.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Marks a response as never to be cached (pages with tokens, API data).
pub(crate) fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn asset(
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    match assets::find(&name) {
        Some(asset) => asset.response(&headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/dashboard/api/") {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No endpoint {} {}.", request.method(), request.uri().path()),
        );
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// The session a request was admitted with (set by [`gate`]).
pub(crate) fn session_of(request_extensions: &axum::http::Extensions) -> Option<&Session> {
    request_extensions.get::<Session>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lr_session=abc; lr_session_x=zzz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "lr_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "lr_sess"), None);
    }

    #[test]
    fn only_the_login_page_and_its_stylesheet_are_public() {
        assert!(is_public(&Method::GET, "/dashboard/login"));
        assert!(is_public(&Method::POST, "/dashboard/login"));
        assert!(is_public(&Method::GET, "/dashboard/assets/style.css"));
        assert!(!is_public(&Method::GET, "/dashboard/assets/app.js"));
        assert!(!is_public(&Method::GET, "/dashboard"));
        assert!(!is_public(&Method::GET, "/dashboard/api/models"));
        assert!(!is_public(&Method::POST, "/dashboard/logout"));
    }

    #[test]
    fn origin_checks() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "127.0.0.1:3200")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3200"),
            ("origin", "http://127.0.0.1:3200")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3200"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3200"),
            ("origin", "http://127.0.0.1:3100")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:3200"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:3200"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:3200"),
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
