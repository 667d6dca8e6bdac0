//! The admin dashboard over real HTTP: access control (login, sessions, CSRF, rate limit, the
//! set-up page), live changes that routing follows at once and that are audited, and the
//! JSON API behind each page, checked against traffic sent through the proxy.

mod dashboard_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dashboard_support::{
    Fixture, PASSWORD, Session, USER, cookie_value, fixture, fixture_with, form, location,
    set_cookie,
};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use router_gateway::dashboard::{Credentials, Dashboard, hash_password};
use router_gateway::judge::Judge;
use secrecy::SecretString;
use serde_json::{Value, json};

/// Polls `check` until it returns `Some`, for data that reaches the store asynchronously.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn without_a_password_the_dashboard_only_says_how_to_set_one() {
    let fx = fixture_with(None, "").await;
    for path in [
        "/dashboard",
        "/dashboard/login",
        "/dashboard/models",
        "/dashboard/assets/app.js",
        "/",
        "/elsewhere",
    ] {
        let r = fx.get(path, None).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let page = r.text().await.unwrap();
        assert!(page.contains("ADMIN_PASSWORD") && page.contains("id=\"setup\""), "{path}: {page}");
        assert!(!page.contains("<form"), "{path}");
    }
    let r = fx.get("/dashboard/api/models", None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_configured");
    let r = fx
        .client
        .post(format!("{}/dashboard/login", fx.dashboard))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("username", "admin"), ("password", "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The page's stylesheet is still served, so the explanation is readable.
    assert_eq!(fx.get("/dashboard/assets/style.css", None).await.status(), StatusCode::OK);
    fx.stop().await;
}

#[tokio::test]
async fn without_a_session_only_the_login_page_is_served() {
    let fx = fixture().await;
    for path in [
        "/",
        "/dashboard",
        "/dashboard/",
        "/dashboard/models",
        "/dashboard/decisions",
        "/dashboard/no-such-page",
        "/dashboard/assets/app.js",
        "/dashboard/assets/chart.js",
        "/v1/chat/completions",
        "/metrics",
    ] {
        let r = fx.get(path, None).await;
        assert!(
            r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::TEMPORARY_REDIRECT,
            "{path}: {}",
            r.status()
        );
        let to = location(&r).unwrap().to_string();
        assert!(to == "/dashboard/login" || (path == "/" && to == "/dashboard"), "{path} → {to}");
        assert!(r.text().await.unwrap().is_empty(), "{path} leaks a body");
    }
    for path in [
        "/dashboard/api/models",
        "/dashboard/api/overview",
        "/dashboard/api/decisions",
        "/dashboard/api/session",
        "/dashboard/api/nope",
    ] {
        let r = fx.get(path, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "login_required", "{path}");
    }
    let r = fx
        .client
        .post(format!("{}/dashboard/api/deployments/m-a/weight", fx.dashboard))
        .json(&json!({"weight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fx.running().gateway.registry.deployment("m-a").unwrap().1.weight(), 0.5);

    let login = fx.get("/dashboard/login", None).await;
    assert_eq!(login.status(), StatusCode::OK);
    let csp = login.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    let page = login.text().await.unwrap();
    assert!(page.contains("<form") && page.contains("name=\"password\""), "{page}");
    assert!(!page.contains("app.js"), "the login page loads no dashboard script");
    assert_eq!(fx.get("/dashboard/assets/style.css", None).await.status(), StatusCode::OK);

    // Nothing of the dashboard is on the proxy port.
    for path in ["/dashboard", "/dashboard/login", "/dashboard/api/models"] {
        let r = fx.client.get(format!("{}{path}", fx.proxy)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "proxy {path}");
    }
    fx.stop().await;
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_and_logout_ends_it() {
    let fx = fixture().await;
    let wrong = fx.submit_login(USER, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "lr_session").is_none());
    let page = wrong.text().await.unwrap();
    assert!(page.contains("id=\"login-error\""), "{page}");
    assert!(page.contains(&format!("value=\"{USER}\"")), "the username is kept");
    assert_eq!(fx.submit_login("admin", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    let ok = fx.submit_login(USER, PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), Some("/dashboard"));
    let cookie = set_cookie(&ok, "lr_session").unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let session = Session { cookie: cookie_value(&cookie), csrf: String::new() };
    let shell = fx.get("/dashboard", Some(&session)).await;
    assert_eq!(shell.status(), StatusCode::OK);
    assert_eq!(shell.headers()["cache-control"], "no-store");
    let html = shell.text().await.unwrap();
    let info = fx.api("/session", &session).await;
    assert_eq!(info["username"], USER);
    let csrf = info["csrf_token"].as_str().unwrap().to_string();
    assert!(html.contains(&format!("<meta name=\"csrf-token\" content=\"{csrf}\">")), "{html}");
    assert!(html.contains("/dashboard/assets/app.js"));
    for page in ["overview", "models", "quality", "decisions", "feedback"] {
        assert_eq!(
            fx.get(&format!("/dashboard/{page}"), Some(&session)).await.status(),
            StatusCode::OK,
            "{page}"
        );
    }
    assert_eq!(fx.get("/dashboard/secrets", Some(&session)).await.status(), StatusCode::NOT_FOUND);
    let js = fx.get("/dashboard/assets/app.js", Some(&session)).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    // A logged-in browser asking for the login page goes to the dashboard.
    assert_eq!(location(&fx.get("/dashboard/login", Some(&session)).await), Some("/dashboard"));

    // Logging out is a change: it needs the CSRF token.
    let no_token = fx.post("/dashboard/logout", &session, None, json!({})).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let out = fx.post("/dashboard/logout", &session, Some(&csrf), json!({})).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert!(set_cookie(&out, "lr_session").unwrap().contains("Max-Age=0"));
    let after = fx.get("/dashboard", Some(&session)).await;
    assert_eq!(location(&after), Some("/dashboard/login"));
    assert_eq!(
        fx.get("/dashboard/api/session", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    fx.stop().await;
}

#[tokio::test]
async fn the_login_form_must_come_with_its_own_cookie() {
    let fx = fixture().await;
    let page = fx.get("/dashboard/login", None).await;
    let token = dashboard_support::form_token(&page.text().await.unwrap());
    let fields = [("username", USER), ("password", PASSWORD), ("token", token.as_str())];
    // A form posted from elsewhere carries no login cookie (it is SameSite=Strict).
    let r = fx
        .client
        .post(format!("{}/dashboard/login", fx.dashboard))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "lr_session").is_none());
    let r = fx
        .client
        .post(format!("{}/dashboard/login", fx.dashboard))
        .header(COOKIE, "lr_login=someone-elses-token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A cross-site POST is refused before anything else.
    let r = fx
        .client
        .post(format!("{}/dashboard/login", fx.dashboard))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    fx.stop().await;
}

#[tokio::test]
async fn failed_logins_are_limited_per_address() {
    let fx = fixture().await;
    for i in 0..5 {
        assert_eq!(
            fx.submit_login(USER, &format!("guess {i}")).await.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {i}"
        );
    }
    // The sixth attempt is refused even with the right password.
    let limited = fx.submit_login(USER, PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(set_cookie(&limited, "lr_session").is_none());
    assert!(limited.text().await.unwrap().contains("Too many failed attempts"));
    fx.stop().await;
}

#[tokio::test]
async fn an_argon2_hash_works_as_the_password() {
    let phc = hash_password(&SecretString::from(PASSWORD.to_string())).unwrap();
    let fx = fixture_with(Some(Credentials::with_hash(USER, &phc).unwrap()), "").await;
    assert_eq!(fx.submit_login(USER, "wrong").await.status(), StatusCode::UNAUTHORIZED);
    let session = fx.login().await;
    assert_eq!(fx.api("/session", &session).await["username"], USER);
    fx.stop().await;
}

#[tokio::test]
async fn changes_need_the_sessions_csrf_token_and_same_origin() {
    let fx = fixture().await;
    let session = fx.login().await;
    let other = fx.login().await;
    assert_ne!(session.csrf, other.csrf);
    let path = "/dashboard/api/deployments/m-a/weight";
    let body = json!({"weight": 7});
    for (csrf, what) in [
        (None, "no token"),
        (Some("forged"), "a wrong token"),
        (Some(other.csrf.as_str()), "another session's token"),
    ] {
        let r = fx.post(path, &session, csrf, body.clone()).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf", "{what}");
    }
    let cross = fx
        .client
        .post(format!("{}{path}", fx.dashboard))
        .header(COOKIE, format!("lr_session={}", session.cookie))
        .header("x-csrf-token", &session.csrf)
        .header("origin", "http://127.0.0.1:1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let registry = &fx.running().gateway.registry;
    assert_eq!(registry.deployment("m-a").unwrap().1.weight(), 0.5, "nothing changed yet");
    let same_origin = fx
        .client
        .post(format!("{}{path}", fx.dashboard))
        .header(COOKIE, format!("lr_session={}", session.cookie))
        .header("x-csrf-token", &session.csrf)
        .header("origin", fx.dashboard.clone())
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    assert_eq!(registry.deployment("m-a").unwrap().1.weight(), 7.0);
    fx.stop().await;
}

#[tokio::test]
async fn weights_steer_traffic_at_once_and_are_audited() {
    let fx = fixture().await;
    let session = fx.login().await;
    let before = fx.deployments_answering("m", 30).await;
    assert!(before.iter().any(|d| d == "m-a") && before.iter().any(|d| d == "m-b"), "{before:?}");

    let r = fx.change("/deployments/m-a/weight", &session, json!({"weight": 0})).await;
    assert_eq!(r["changed"], true);
    assert_eq!(r["now"]["weight"], 0.0);
    assert!(fx.deployments_answering("m", 20).await.iter().all(|d| d == "m-b"));

    fx.change("/deployments/m-a/weight", &session, json!({"weight": 3})).await;
    fx.change("/deployments/m-b/weight", &session, json!({"weight": 0})).await;
    assert!(fx.deployments_answering("m", 20).await.iter().all(|d| d == "m-a"));
    // The proxy's own view agrees.
    let models: Value =
        fx.client.get(format!("{}/models", fx.proxy)).send().await.unwrap().json().await.unwrap();
    let m = models["models"].as_array().unwrap().iter().find(|m| m["name"] == "m").unwrap();
    assert_eq!(m["weight"], 3.0);

    // Setting a weight to what it is changes nothing and records nothing.
    let same = fx.change("/deployments/m-a/weight", &session, json!({"weight": 3})).await;
    assert_eq!(same["changed"], false);

    let audit = fx.api("/audit", &session).await;
    let entries = audit["audit"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    let newest = &entries[0];
    assert_eq!(newest["actor"], USER);
    assert_eq!(newest["action"], "set_weight");
    assert_eq!(newest["target"], "m-b");
    let detail: Value = serde_json::from_str(newest["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail, json!({"model": "m", "from": 0.5, "to": 0.0}));
    assert!(newest["created_at_ms"].as_i64().unwrap() > 1_600_000_000_000);
    // The models page lists the same entries.
    let page = fx.api("/models", &session).await;
    assert_eq!(page["audit"].as_array().unwrap().len(), 3);

    for (body, what) in [
        (json!({"weight": -1}), "negative"),
        (json!({"weight": 1e12}), "huge"),
        (json!({"weight": "heavy"}), "not a number"),
        (json!({"w": 1}), "unknown field"),
    ] {
        let r = fx
            .post("/dashboard/api/deployments/m-a/weight", &session, Some(&session.csrf), body)
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
    }
    let r = fx
        .post(
            "/dashboard/api/deployments/nope/weight",
            &session,
            Some(&session.csrf),
            json!({"weight": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Default deployment ids contain `#`, which the client percent-encodes.
    let r = fx.change("/deployments/cheap%231/weight", &session, json!({"weight": 2})).await;
    assert_eq!(r["now"]["deployment"], "cheap#1");
    fx.stop().await;
}

#[tokio::test]
async fn an_operator_sets_and_lifts_a_deployments_in_flight_limit() {
    let fx = fixture().await;
    let session = fx.login().await;
    let r =
        fx.change("/deployments/m-a/max_in_flight", &session, json!({"max_in_flight": 3})).await;
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["now"]["max_in_flight"], 3, "{r}");
    let capacity = &fx.running().gateway.registry.deployment("m-a").unwrap().1.capacity;
    assert_eq!(capacity.max(), Some(3));
    let models: Value =
        fx.client.get(format!("{}/models", fx.proxy)).send().await.unwrap().json().await.unwrap();
    let m = models["models"].as_array().unwrap().iter().find(|m| m["name"] == "m").unwrap();
    let a = m["deployments"].as_array().unwrap().iter().find(|d| d["id"] == "m-a").unwrap();
    assert_eq!(a["max_in_flight"], 3, "{models}");

    let same =
        fx.change("/deployments/m-a/max_in_flight", &session, json!({"max_in_flight": 3})).await;
    assert_eq!(same["changed"], false);
    let lifted =
        fx.change("/deployments/m-a/max_in_flight", &session, json!({"max_in_flight": null})).await;
    assert_eq!(lifted["changed"], true);
    assert_eq!(lifted["now"]["max_in_flight"], Value::Null);
    assert_eq!(capacity.max(), None);

    let audit = fx.api("/audit", &session).await;
    let newest = &audit["audit"][0];
    assert_eq!(newest["action"], "set_max_in_flight");
    assert_eq!(newest["target"], "m-a");
    let detail: Value = serde_json::from_str(newest["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail, json!({"model": "m", "from": 3, "to": null}));

    for (body, what) in [
        (json!({"max_in_flight": 0}), "zero"),
        (json!({"max_in_flight": -2}), "negative"),
        (json!({"max_in_flight": 2.5}), "not whole"),
        (json!({"max_in_flight": 1_000_000}), "huge"),
        (json!({}), "missing: must not lift the limit by accident"),
        (json!({"max": 4}), "unknown field"),
    ] {
        let r = fx
            .post(
                "/dashboard/api/deployments/m-a/max_in_flight",
                &session,
                Some(&session.csrf),
                body,
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
        let error: Value = r.json().await.unwrap();
        assert!(error.to_string().contains("max_in_flight"), "{what}: {error}");
    }
    fx.stop().await;
}

#[tokio::test]
async fn a_disabled_model_gets_no_more_traffic() {
    let fx = fixture().await;
    let session = fx.login().await;
    let favourite = fx.favourite("auto:cost", 5).await;

    let path = format!("/models/{favourite}/enabled");
    let r = fx.change(&path, &session, json!({"enabled": false})).await;
    assert_eq!(r["now"]["enabled"], false);
    let after = fx.models_answering("auto:cost", 20).await;
    assert!(after.iter().all(|m| *m != favourite), "{favourite} still answers: {after:?}");
    let page = fx.api("/models", &session).await;
    let model = page["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == favourite.as_str())
        .unwrap();
    assert_eq!(model["enabled"], false);
    assert_eq!(model["availability"], "unavailable");

    let analyze = |f: &Fixture| {
        let request = f.client.post(format!("{}/api/routing/analyze", f.proxy));
        async move {
            request
                .json(&json!({"query": "What is the capital of Peru?", "profile": "cost"}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let decision = analyze(&fx).await;
    let listed = |d: &Value, key: &str| {
        d[key].as_array().unwrap().iter().any(|e| e["model"] == favourite.as_str())
    };
    assert!(listed(&decision, "excluded") && !listed(&decision, "ranking"), "{decision}");
    fx.change(&path, &session, json!({"enabled": true})).await;
    // Back among the candidates at once (whether it wins again depends on what was learned
    // from the traffic the others took meanwhile).
    let decision = analyze(&fx).await;
    assert!(listed(&decision, "ranking") && !listed(&decision, "excluded"), "{decision}");

    // A deployment can be switched off on its own.
    fx.change("/deployments/m-a/enabled", &session, json!({"enabled": false})).await;
    assert!(fx.deployments_answering("m", 10).await.iter().all(|d| d == "m-b"));

    let actions: Vec<String> = fx.api("/audit", &session).await["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            "disable_deployment m-a".to_string(),
            format!("enable_model {favourite}"),
            format!("disable_model {favourite}")
        ]
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_circuit_can_be_reset_by_hand() {
    let fx = fixture_with(
        Some(dashboard_support::credentials()),
        "[circuit]\nconsecutive_failures = 2\ncooldown_ms = 600000\n",
    )
    .await;
    let session = fx.login().await;
    for _ in 0..2 {
        let r = fx.chat("flaky", "hello").await;
        assert!(!r.status().is_success());
    }
    let circuit = |page: &Value| {
        page["models"].as_array().unwrap().iter().find(|m| m["name"] == "flaky").unwrap()["deployments"][0]["circuit"].clone()
    };
    assert_eq!(circuit(&fx.api("/models", &session).await), "open");
    let r = fx.change("/deployments/flaky%231/reset-circuit", &session, json!({})).await;
    assert_eq!(r["now"]["circuit"], "closed");
    assert_eq!(circuit(&fx.api("/models", &session).await), "closed");
    let audit = fx.api("/audit", &session).await;
    assert_eq!(audit["audit"][0]["action"], "reset_circuit");
    let detail: Value =
        serde_json::from_str(audit["audit"][0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["from"], "open");
    fx.stop().await;
}

#[tokio::test]
async fn the_overview_counts_traffic_cost_and_savings() {
    let fx = fixture().await;
    let session = fx.login().await;
    for model in ["cheap", "cheap", "cheap", "pro", "m"] {
        assert_eq!(
            fx.chat(model, "Explain what a hash map is in two sentences.").await.status(),
            200
        );
    }
    assert!(!fx.chat("flaky", "hello").await.status().is_success());
    let (f, s) = (&fx, &session);
    let overview = eventually("six requests in the overview", move || async move {
        f.flushed().await;
        let o = f.api("/overview?window=15m", s).await;
        (o["totals"]["requests"] == 6
            && o["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["requests"].as_u64().unwrap())
                .sum::<u64>()
                == 6)
            .then_some(o)
    })
    .await;
    let totals = &overview["totals"];
    assert_eq!(overview["window"], "15m");
    assert_eq!(overview["series"].as_array().unwrap().len(), 30);
    assert!(totals["errors"].as_u64().unwrap() >= 1, "{totals}");
    assert!(
        totals["latency_p50_ms"].is_u64()
            && totals["latency_p95_ms"].as_u64() >= totals["latency_p50_ms"].as_u64()
    );
    assert!(totals["rpm"].as_f64().unwrap() > 0.0);

    // Savings, recomputed here from what the store holds about each request.
    let store = &fx.running().gateway.store;
    let decisions =
        store.recent_decisions(&router_store::DecisionFilter::default(), 100).await.unwrap();
    assert_eq!(decisions.len(), 6);
    let (mut actual, mut at_pro, mut input, mut output) = (0.0, 0.0, 0, 0);
    for d in &decisions {
        let o = d.outcome.as_ref().unwrap();
        actual += o.cost_usd;
        at_pro += (o.input_tokens as f64 * 3.0 + o.output_tokens as f64 * 15.0) / 1e6;
        input += o.input_tokens;
        output += o.output_tokens;
    }
    assert!(actual > 0.0);
    assert_eq!(totals["input_tokens"], input);
    assert_eq!(totals["output_tokens"], output);
    let savings = &overview["savings"];
    // The strongest model: the highest output price among enabled models is pro's 15.
    assert_eq!(savings["strongest_model"], "pro");
    assert!((savings["actual_usd"].as_f64().unwrap() - actual).abs() < 1e-12, "{savings}");
    assert!((savings["strongest_usd"].as_f64().unwrap() - at_pro).abs() < 1e-12, "{savings}");
    assert!(
        (savings["saved_usd"].as_f64().unwrap() - (at_pro - actual)).abs() < 1e-12,
        "{savings}"
    );
    assert!(savings["saved_usd"].as_f64().unwrap() > 0.0);

    let counts = &overview["sources"]["counts"];
    assert_eq!(counts["explicit"], 6, "{counts}");
    assert_eq!(counts["policy"], 0);
    fx.models_answering("auto:cost", 2).await;
    // The sources are counted from the store, like the rest of the overview.
    fx.flushed().await;
    let o = fx.api("/overview", &session).await;
    assert_eq!(o["window"], "1h");
    assert_eq!(o["sources"]["counts"]["policy"], 2, "{}", o["sources"]);
    assert_eq!(o["judge"], Value::Null, "no judge is attached");
    assert_eq!(o["models"]["total"], 4);

    let r = fx.get("/dashboard/api/overview?window=2y", Some(&session)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    fx.stop().await;
}

#[tokio::test]
async fn quality_decisions_and_feedback_reflect_the_traffic() {
    let fx = fixture().await;
    let session = fx.login().await;
    // The first is routed; the others name their model.
    let (mut sent, mut answered_by) = (Vec::new(), Vec::new());
    for (model, text) in [
        ("auto:cost", "Bonjour, comment ça va ?"),
        ("cheap", "Write a Python function that reverses a string"),
        ("cheap", "用三句话介绍一下长城的历史"),
        ("pro", "Write a Python function that sorts a list of numbers"),
    ] {
        let r = fx.chat(model, text).await;
        assert_eq!(r.status(), 200);
        sent.push(r.headers()["x-router-decision-id"].to_str().unwrap().to_string());
        answered_by.push(r.headers()["x-router-model"].to_str().unwrap().to_string());
    }
    let (routed, ids) = (sent[0].clone(), sent[1..].to_vec());
    assert!(!fx.chat("flaky", "hello").await.status().is_success());
    fx.flushed().await;

    let hostile = "<img src=x onerror=alert(1)> great answer";
    for (id, rating, comment) in
        [(&ids[0], 5, Some(hostile)), (&ids[1], 2, None), (&ids[2], 4, Some("solid"))]
    {
        let mut body = json!({"decision_id": id, "rating": rating});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        let r = fx
            .client
            .post(format!("{}/api/routing/feedback", fx.proxy))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let feedback = fx.api("/feedback", &session).await;
    let entries = feedback["feedback"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["feedback"]["decision_id"], ids[2].as_str(), "newest first");
    assert_eq!(
        entries[2]["feedback"]["comment"], hostile,
        "comments come back verbatim; the page escapes them"
    );
    assert_eq!(entries[2]["model"], "cheap");

    let quality = fx.api("/quality?window=1h", &session).await;
    let cell = |axis: &str, model: &str, key: &str| {
        quality[axis]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == model && c["key"] == key)
            .cloned()
    };
    let cheap_code = cell("by_domain", "cheap", "code").expect("cheap × code");
    assert_eq!(cheap_code["requests"], 1);
    assert_eq!(cheap_code["success_rate"], 1.0);
    assert_eq!(cheap_code["mean_rating"], 5.0);
    let cheap_zh = cell("by_language", "cheap", "zh").expect("cheap × zh");
    assert_eq!(cheap_zh["mean_rating"], 2.0);
    let cheap_en = cell("by_language", "cheap", "en").expect("cheap × en");
    assert_eq!(cheap_en["requests"], 1);
    let flaky: Vec<&Value> =
        quality["by_domain"].as_array().unwrap().iter().filter(|c| c["model"] == "flaky").collect();
    assert_eq!(flaky.len(), 1);
    assert_eq!(flaky[0]["success_rate"], 0.0);
    assert!(!quality["learned"]["cells"].as_array().unwrap().is_empty());
    assert!(
        quality["learned"]["by_domain"].as_array().unwrap().iter().any(|b| b["model"] == "cheap")
    );
    assert_eq!(quality["domains"].as_array().unwrap().len(), 8);

    // Decisions: newest first, filterable, with features, ranking, reason, outcome, feedback.
    let all = fx.api("/decisions", &session).await;
    let list = all["decisions"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(list[0]["chosen_model"], "flaky");
    assert_eq!(list[0]["outcome"]["status"], "error");
    let first = list.iter().find(|d| d["id"] == ids[0].as_str()).unwrap();
    assert_eq!(first["source"], "explicit");
    assert_eq!(first["feedback"]["rating"], 5);
    assert_eq!(first["feedback"]["comment"], hostile);
    assert_eq!(first["features"]["domain"]["domain"], "code");
    assert!(first["ranking"].is_array() && first["reason"].is_string());
    assert_eq!(first["outcome"]["model"], "cheap");
    assert!(first["outcome"]["output_tokens"].as_u64().unwrap() > 0);

    let (f, s) = (&fx, &session);
    let only = move |query: &str| {
        let query = query.to_string();
        async move {
            f.api(&format!("/decisions?{query}"), s).await["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(only("model=pro").await, [ids[2].clone()]);
    assert_eq!(only("source=policy").await, std::slice::from_ref(&routed));
    assert_eq!(only("language=zh").await, [ids[1].clone()]);
    assert_eq!(only("outcome=error").await.len(), 1);
    let routed_to_cheap = usize::from(answered_by[0] == "cheap");
    assert_eq!(only("outcome=ok&model=cheap").await.len(), 2 + routed_to_cheap);
    assert_eq!(only("domain=code&model=cheap").await, [ids[0].clone()]);
    // Paging: two at a time, following `next`.
    let page1 = fx.api("/decisions?limit=2", &session).await;
    let next = page1["next"].as_str().unwrap().to_string();
    let page2 = fx.api(&format!("/decisions?limit=2&before={next}"), &session).await;
    let page3 = fx
        .api(&format!("/decisions?limit=2&before={}", page2["next"].as_str().unwrap()), &session)
        .await;
    assert_eq!(page3["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next"], Value::Null);
    let mut paged: Vec<Value> = Vec::new();
    for p in [&page1, &page2, &page3] {
        paged.extend(p["decisions"].as_array().unwrap().iter().map(|d| d["id"].clone()));
    }
    assert_eq!(paged, list.iter().map(|d| d["id"].clone()).collect::<Vec<_>>());

    let one = fx.api(&format!("/decisions/{routed}"), &session).await;
    assert_eq!(one["source"], "policy");
    assert!(one["ranking"].as_array().unwrap().len() >= 2, "{one}");
    assert_eq!(
        fx.get("/dashboard/api/decisions/unknown-id", Some(&session)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fx.get("/dashboard/api/decisions?source=oracle", Some(&session)).await.status(),
        StatusCode::BAD_REQUEST
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_disabled_dashboard_has_no_listener() {
    let upstream = dashboard_support::simulated_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[dashboard]\nenabled = false\n\n[store]\nurl = \"sqlite://{}\"\n\n{}",
        dir.path().join("r.db").display(),
        dashboard_support::models_config(&upstream.base_url())
    );
    let config = router_gateway::Config::parse(
        &text,
        Path::new("t.toml"),
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let running = router_gateway::start(config, std::future::pending()).await.unwrap();
    assert_eq!(running.dashboard_addr, None);
    assert_eq!(running.dashboard_url(), None);
    running.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_url_names_its_listener() {
    let fx = fixture().await;
    assert_eq!(fx.running().dashboard_url(), Some(format!("{}/dashboard", fx.dashboard)));
    fx.stop().await;
}

#[tokio::test]
async fn an_attached_judge_shows_its_status() {
    let fx = fixture().await;
    let gateway = fx.running().gateway.clone();
    let judge = Judge::new(
        &gateway.config.judge,
        router_providers::HttpClient::new(std::time::Duration::from_secs(2)).unwrap(),
    );
    let app = Dashboard::new(gateway, Some(dashboard_support::credentials()))
        .with_judge(Arc::new(judge))
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    let own = Fixture { dashboard: format!("http://{addr}"), ..fx };
    let session = own.login().await;
    let judge = own.api("/judge", &session).await;
    assert_eq!(judge["judge"]["model"], "llama3", "{judge}");
    assert_eq!(judge["judge"]["mode"], "off");
    let overview = own.api("/overview", &session).await;
    assert_eq!(overview["judge"]["timeout_ms"], 1500, "{overview}");
    own.stop().await;
}

#[tokio::test]
async fn the_gateways_own_judge_shows_on_the_overview() {
    // A port nothing listens on: the judge is configured but unreachable.
    let refused = router_sim::RefusedPort::new().unwrap();
    let extra =
        format!("[judge]\nmode = \"hybrid\"\nurl = \"{}\"\ntimeout_ms = 200\n", refused.base_url());
    let fx = fixture_with(Some(dashboard_support::credentials()), &extra).await;
    let session = fx.login().await;
    let judge = fx.api("/overview", &session).await["judge"].clone();
    assert_eq!(judge["mode"], "hybrid", "{judge}");
    assert_eq!(judge["timeout_ms"], 200);
    // The background probe finds nothing there.
    let (f, s) = (&fx, &session);
    eventually("the judge reported unreachable", move || async move {
        let judge = f.api("/judge", s).await["judge"].clone();
        (judge["reachable"] == false).then_some(())
    })
    .await;
    fx.stop().await;
}
