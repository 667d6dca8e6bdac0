//! Logging in and out, and the page shell a session gets.
//!
//! The login form carries a token that must match a cookie set with the form
//! (`SameSite=Strict`), so another site cannot log a browser in under its own account.

use std::time::Instant;

use axum::Form;
use axum::extract::{FromRequest as _, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::credentials::constant_time_eq;
use super::pages::{self, LANG_COOKIE, Lang, LoginProblem};
use super::session::{LIFETIME, random_token};
use super::{DashboardState, SESSION_COOKIE, client_ip, cookie, json_error, no_store, session_of};

/// The cookie pairing a login form with the browser it was served to.
const LOGIN_COOKIE: &str = "lr_login";
/// The pages the shell serves; anything else under `/dashboard/` is 404.
pub const PAGES: [&str; 5] = ["overview", "models", "quality", "decisions", "feedback"];

/// A `Set-Cookie` value. `Secure` is added when a TLS-terminating proxy says the browser
/// came over HTTPS; on plain loopback HTTP a secure cookie would never be sent back.
fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: u64,
    http_only: bool,
) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let mut text = format!("{name}={value}; Path={path}; Max-Age={max_age_s}; SameSite=Strict");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if https {
        text.push_str("; Secure");
    }
    // Tokens and language codes are plain ASCII; a failure here would be a bug, and the
    // worst outcome is a missing cookie.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("lr_invalid=1; Max-Age=0"))
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    lang: Option<String>,
}

fn login_response(
    status: StatusCode,
    headers: &HeaderMap,
    lang: Lang,
    username: &str,
    problem: Option<LoginProblem>,
) -> Response {
    // A browser that already holds a form token keeps it, so that two login tabs (or a
    // stray request that lands on this page) do not invalidate each other's form.
    let held = cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let token = match held.map_or_else(random_token, Ok) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for the login form");
            return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness available").into_response();
        }
    };
    let mut response =
        (status, Html(pages::login(lang, &token, username, problem))).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_COOKIE, &token, "/dashboard/login", 3600, true),
    );
    if let Some(LoginProblem::RateLimited { retry_after_s }) = problem
        && let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    no_store(response)
}

/// `GET /dashboard/login[?lang=en|zh]`.
pub async fn login_page(
    State(state): State<DashboardState>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let logged_in = cookie(&headers, SESSION_COOKIE)
        .is_some_and(|t| state.sessions.get(&t, Instant::now()).is_some());
    if logged_in {
        return Redirect::to("/dashboard").into_response();
    }
    let chosen = query.lang.as_deref().and_then(Lang::parse);
    let lang = chosen.unwrap_or_else(|| Lang::of(&headers));
    let mut response = login_response(StatusCode::OK, &headers, lang, "", None);
    if let Some(lang) = chosen {
        let c = set_cookie(&headers, LANG_COOKIE, lang.code(), "/dashboard", 365 * 86_400, false);
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

/// `POST /dashboard/login` (form: `username`, `password`, `token`).
pub async fn login(State(state): State<DashboardState>, request: Request) -> Response {
    let ip = client_ip(&request);
    let headers = request.headers().clone();
    let lang = Lang::of(&headers);
    let Some(credentials) = state.credentials.clone() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Counted before anything else, so a limited address learns nothing more.
    if let Err(wait) = state.limiter.check(ip, Instant::now()) {
        let problem = LoginProblem::RateLimited { retry_after_s: wait.as_secs().max(1) };
        return login_response(StatusCode::TOO_MANY_REQUESTS, &headers, lang, "", Some(problem));
    }
    let Form(form) = match Form::<LoginForm>::from_request(request, &state).await {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.token.as_bytes()) {
        return login_response(
            StatusCode::FORBIDDEN,
            &headers,
            lang,
            &form.username,
            Some(LoginProblem::FormExpired),
        );
    }
    let (username, password) = (form.username.trim().to_string(), form.password);
    let ok = if credentials.is_hashed() {
        // An argon2 run takes tens of milliseconds of CPU: keep it off the async threads.
        let (c, u) = (credentials.clone(), username.clone());
        tokio::task::spawn_blocking(move || c.verify(&u, &password)).await.unwrap_or(false)
    } else {
        credentials.verify(&username, &password)
    };
    if !ok {
        state.limiter.failed(ip, Instant::now());
        tracing::warn!(%ip, "dashboard login failed");
        return login_response(
            StatusCode::UNAUTHORIZED,
            &headers,
            lang,
            &username,
            Some(LoginProblem::WrongCredentials),
        );
    }
    state.limiter.succeeded(ip);
    let (token, _) = match state.sessions.create(credentials.username(), Instant::now()) {
        Ok(created) => created,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a session");
            return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness available").into_response();
        }
    };
    tracing::info!(user = credentials.username(), %ip, "dashboard login");
    let mut response = Redirect::to("/dashboard").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, &token, "/dashboard", LIFETIME.as_secs(), true),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_COOKIE, "", "/dashboard/login", 0, true),
    );
    no_store(response)
}

/// `POST /dashboard/logout` (with the CSRF header, like every change).
pub async fn logout(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.remove(&token);
    }
    let mut response = axum::Json(json!({"status": "logged_out"})).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", "/dashboard", 0, true),
    );
    no_store(response)
}

/// `GET /dashboard`: the shell, which draws the overview.
pub async fn shell(request: Request) -> Response {
    let Some(session) = session_of(request.extensions()) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "Log in to the dashboard first.",
        );
    };
    let lang = Lang::of(request.headers());
    no_store(Html(pages::shell(lang, &session.username, &session.csrf)).into_response())
}

/// `GET /dashboard/<page>`: the shell, which draws the page named in the path.
pub async fn shell_page(Path(page): Path<String>, request: Request) -> Response {
    if !PAGES.contains(&page.as_str()) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    shell(request).await
}
