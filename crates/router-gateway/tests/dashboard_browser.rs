//! The dashboard end to end in real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver`): log in (a wrong password refused), see the models of a running gateway,
//! change a weight and see the traffic follow it, disable a model and see no more traffic go
//! to it, switch to Chinese, and check that user text is shown, not run. A screenshot of each
//! page is written to `target/artifacts/dashboard/`.
//!
//! Without Chromium or chromedriver the test says so and passes, unless
//! `LLM_ROUTER_TEST_STRICT=1` (CI), where it fails.

mod dashboard_support;

use std::io::Write as _;
use std::path::PathBuf;

use dashboard_support::webdriver::{Browser, Driver, Tools};
use dashboard_support::{Fixture, PASSWORD, USER, credentials, fixture_with};
use serde_json::json;

/// `target/artifacts/dashboard`, emptied of earlier screenshots.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("artifacts").join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    dir
}

struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    async fn take(&mut self, browser: &Browser, name: &str) {
        self.n += 1;
        browser.screenshot(&self.dir.join(format!("{:02}-{name}.png", self.n))).await;
    }
}

async fn log_in(browser: &Browser, fx: &Fixture, username: &str, password: &str) {
    browser.goto(&format!("{}/dashboard/login", fx.dashboard)).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", password).await;
    browser.click("#login-submit").await;
}

/// The text of the page's main view.
async fn view_text(browser: &Browser) -> String {
    browser.script("return document.getElementById('view') ? document.getElementById('view').innerText : ''").await.as_str().unwrap_or_default().to_string()
}

async fn set_weight(browser: &Browser, deployment: &str, weight: &str) {
    browser.type_into(&format!("input.weight[data-deployment=\"{deployment}\"]"), weight).await;
    browser
        .click(&format!("button[data-action=\"save-weight\"][data-deployment=\"{deployment}\"]"))
        .await;
    // The change is made once the audit log on the page shows it.
    let check = format!(
        "const row = document.querySelector('#audit tbody tr'); return !!row && row.innerText.includes('{deployment}') && row.innerText.includes('\"to\":{weight}');"
    );
    browser.wait_until(&format!("the weight of {deployment} to be saved"), &check).await;
}

#[tokio::test]
async fn dashboard_in_a_real_browser() {
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(why) => {
            if std::env::var("LLM_ROUTER_TEST_STRICT").is_ok_and(|v| v == "1") {
                panic!("the browser test {why}");
            }
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED dashboard_in_a_real_browser: it {why} (LLM_ROUTER_TEST_STRICT=1 makes this a failure)"
            );
            return;
        }
    };
    let mut shots = Shots { dir: artifacts(), n: 0 };
    // A judge that is configured but not running: the overview shows its panel, and every
    // decision is the policy's, as without one.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let judge = format!(
        "[judge]\nmode = \"hybrid\"\nurl = \"http://{nobody}\"\nmodel = \"llama3\"\ntimeout_ms = 300\nmax_in_flight = 3\n"
    );
    let fx = fixture_with(Some(credentials()), &judge).await;
    let driver = Driver::start(&tools).await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(&tools, profile.path()).await;
    let base = format!("{}/dashboard", fx.dashboard);

    // Some traffic first, so the pages have something to show; one piece of feedback carries
    // markup that must be shown as text.
    let r = fx.chat("cheap", "Write a Python function that reverses a string").await;
    let decision = r.headers()["x-router-decision-id"].to_str().unwrap().to_string();
    fx.chat("pro", "用三句话介绍一下长城").await;
    fx.chat("m", "What is a monad?").await;
    fx.chat("flaky", "hello").await;
    fx.models_answering("auto:cost", 3).await;
    let hostile = "<img src=x onerror=\"document.body.dataset.pwned='yes'\"> nice";
    let fb = fx
        .client
        .post(format!("{}/api/routing/feedback", fx.proxy))
        .json(&json!({"decision_id": decision, "rating": 4, "comment": hostile}))
        .send()
        .await
        .unwrap();
    assert_eq!(fb.status(), 200);
    fx.flushed().await;

    // Without a session, any page leads to the login page.
    browser.goto(&format!("{base}/models")).await;
    browser.wait_for("#login-form").await;
    assert!(browser.url().await.ends_with("/dashboard/login"), "{}", browser.url().await);
    shots.take(&browser, "login").await;

    // A wrong password is refused.
    log_in(&browser, &fx, USER, "not the password").await;
    let error = browser.wait_for("#login-error").await;
    let shown = browser.text(&error).await;
    assert!(shown.contains("Wrong username or password"), "{shown}");
    assert!(browser.find("#view").await.is_none());
    shots.take(&browser, "login-refused").await;

    // The right one opens the overview.
    log_in(&browser, &fx, USER, PASSWORD).await;
    browser.wait_for("#chart-rpm svg").await;
    browser.wait_for("#kpi-saved").await;
    let overview = view_text(&browser).await;
    assert!(
        overview.contains("Saved vs. strongest model")
            && overview.contains("How decisions were made"),
        "{overview}"
    );
    assert!(overview.contains("Judge (local LLM)"), "{overview}");
    let calls_out = browser.text(&browser.wait_for("#judge-in-flight").await).await;
    assert!(calls_out.starts_with("0 of 3 at once"), "{calls_out}");
    shots.take(&browser, "overview").await;
    browser.script("document.getElementById('judge').scrollIntoView(); return true").await;
    shots.take(&browser, "overview-judge").await;
    browser.script("window.scrollTo(0, 0); return true").await;

    // New traffic shows up by itself, without a reload (the marker would not survive one).
    let requests = "return document.querySelector('#kpi-requests .value').innerText";
    let before = browser.script(requests).await;
    browser.script("window.notReloaded = true; return true").await;
    fx.models_answering("pro", 2).await;
    let check = format!("return {} !== {before} && window.notReloaded === true;", &requests[7..]);
    browser.wait_until("the overview to refresh itself", &check).await;

    // Models: every model and deployment of the running gateway.
    browser.click("nav a[data-nav=\"models\"]").await;
    browser.wait_for("#models tr[data-deployment=\"m-b\"]").await;
    let models = view_text(&browser).await;
    for name in ["cheap", "pro", "m-a", "m-b", "flaky#1"] {
        assert!(models.contains(name), "{name} missing from the models page: {models}");
    }
    shots.take(&browser, "models").await;

    // The model the router favours now, disabled in the page, gets no more traffic.
    let favourite = fx.favourite("auto:cost", 3).await;
    browser
        .click(&format!("button[data-action=\"disable-model\"][data-model=\"{favourite}\"]"))
        .await;
    browser
        .wait_for(&format!("button[data-action=\"enable-model\"][data-model=\"{favourite}\"]"))
        .await;
    let after = fx.models_answering("auto:cost", 15).await;
    assert!(after.iter().all(|m| *m != favourite), "{favourite} still answers: {after:?}");
    let check = format!(
        "return document.querySelector('#audit tbody tr').innerText.includes('disable model') && document.querySelector('#audit tbody tr').innerText.includes('{favourite}');"
    );
    browser.wait_until("the audit log to show the disabling", &check).await;

    // A weight changed in the page steers the traffic at once.
    set_weight(&browser, "m-a", "0").await;
    assert!(fx.deployments_answering("m", 20).await.iter().all(|d| d == "m-b"));
    set_weight(&browser, "m-a", "5").await;
    set_weight(&browser, "m-b", "0").await;
    assert!(fx.deployments_answering("m", 20).await.iter().all(|d| d == "m-a"));
    assert_eq!(fx.running().gateway.registry.deployment("m-b").unwrap().1.weight(), 0.0);
    // So does an in-flight limit, shown on the deployment's row once saved.
    browser.type_into("input.limit[data-deployment=\"m-a\"]", "4").await;
    browser.click("button[data-action=\"save-limit\"][data-deployment=\"m-a\"]").await;
    browser
        .wait_until(
            "the limit of m-a to be saved",
            "const row = document.querySelector('tr.deployment[data-deployment=\"m-a\"]'); return !!row && row.innerText.includes('0 of 4 in flight');",
        )
        .await;
    let capacity = &fx.running().gateway.registry.deployment("m-a").unwrap().1.capacity;
    assert_eq!(capacity.max(), Some(4));
    shots.take(&browser, "models-changed").await;

    // Routing quality: the heat maps.
    browser.click("nav a[data-nav=\"quality\"]").await;
    browser.wait_for("#heat-measured td.cell").await;
    shots.take(&browser, "quality").await;

    // Decisions, filtered down to the one explicit request for cheap, and opened.
    browser.click("nav a[data-nav=\"decisions\"]").await;
    browser.wait_for("#decisions tr.decision").await;
    browser.click("#filter-model option[value=\"cheap\"]").await;
    browser.click("#filter-source option[value=\"explicit\"]").await;
    browser
        .wait_until(
            "the filtered list",
            "return document.querySelectorAll('#decisions tr.decision').length === 1;",
        )
        .await;
    browser.click(&format!("#decisions tr[data-id=\"{decision}\"]")).await;
    let reason = browser.wait_for("#detail-reason").await;
    assert!(browser.text(&reason).await.contains("cheap"));
    shots.take(&browser, "decisions").await;

    // Feedback: the comment is text on the page, and its markup did nothing.
    browser.click("nav a[data-nav=\"feedback\"]").await;
    let comment = browser.wait_for("#feedback td.comment").await;
    assert_eq!(browser.text(&comment).await, hostile);
    assert_eq!(
        browser.script("return document.querySelectorAll('#view img').length").await,
        json!(0)
    );
    assert_eq!(
        browser.script("return document.body.dataset.pwned === undefined").await,
        json!(true)
    );
    shots.take(&browser, "feedback").await;

    // Chinese, switched in place and kept across pages.
    browser.click("#lang-zh").await;
    browser
        .wait_until(
            "the navigation in Chinese",
            "return document.querySelector('nav a[data-nav=\"models\"]').innerText === '模型';",
        )
        .await;
    assert!(view_text(&browser).await.contains("反馈"));
    shots.take(&browser, "feedback-zh").await;
    browser.click("nav a[data-nav=\"overview\"]").await;
    browser.wait_for("#chart-rpm svg").await;
    let overview = view_text(&browser).await;
    assert!(overview.contains("相比最强模型节省") && overview.contains("决策来源"), "{overview}");
    shots.take(&browser, "overview-zh").await;
    browser.click("nav a[data-nav=\"models\"]").await;
    browser.wait_for(&format!("#models tr[data-model=\"{favourite}\"]")).await;
    assert!(view_text(&browser).await.contains("已停用"));
    shots.take(&browser, "models-zh").await;

    // Logging out ends the session: the pages lead to the login page again (in Chinese now).
    browser.click("#logout").await;
    browser.wait_for("#login-form").await;
    browser.goto(&format!("{base}/overview")).await;
    browser.wait_for("#login-form").await;
    assert!(browser.url().await.ends_with("/dashboard/login"));
    let submit = browser.wait_for("#login-submit").await;
    assert_eq!(browser.text(&submit).await, "登录");
    shots.take(&browser, "logged-out-zh").await;

    browser.quit().await;
    drop(driver);
    let written = std::fs::read_dir(&shots.dir)
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png")))
        .count();
    assert_eq!(written as u32, shots.n);
    eprintln!("{} screenshots in {}", shots.n, shots.dir.display());
    fx.stop().await;
}
