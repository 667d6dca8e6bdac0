//! The binary as a user runs it: `check` on good and bad files, `demo` answering real
//! requests, and `serve` stopped with SIGTERM under load without losing a record.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use router_sim::{Latency, SimConfig, SimModel, SimServer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_llm-router");

fn llm_router() -> Command {
    let mut cmd = Command::new(BIN);
    // Keep the tests' own environment out of config validation.
    cmd.env_remove("LLM_ROUTER_CONFIG").env("RUST_LOG", "warn");
    cmd
}

#[test]
fn check_accepts_the_example_and_names_line_and_key_of_errors() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../llm-router.example.toml");
    let out = llm_router()
        .args(["check", "--config"])
        .arg(&example)
        .env("OPENAI_API_KEY", "sk-x")
        .env("ANTHROPIC_API_KEY", "sk-y")
        .env("DEEPSEEK_API_KEY", "sk-z")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[models]]\nname = \"a\"\nprovider = \"ollama\"\nweight = \"heavy\"\n")
        .unwrap();
    let out = llm_router().args(["check", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:4"), "{stderr}");

    // A missing key for an enabled model: named, with its line.
    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, "[[models]]\nname = \"gpt\"\nprovider = \"openai\"\napi_key_env = \"NOT_SET_ANYWHERE_KEY\"\n").unwrap();
    let out = llm_router().args(["check", "--config"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.toml:4") && stderr.contains("NOT_SET_ANYWHERE_KEY"),
        "{stderr}"
    );

    // `serve` refuses to start on the same errors.
    let out = llm_router().args(["serve", "--config"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Waits for a line of the child's stdout that contains `needle`, returning it.
fn wait_for_line(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("no line with `{needle}` from the process: {e}");
            }
        }
    }
}

fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_answers_real_requests_streaming_and_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = llm_router()
        .args(["demo", "--port", "0", "--dashboard-port", "0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = url_in(&wait_for_line(&mut child, "proxy API"));
    let client = reqwest::Client::new();
    for model in ["auto", "auto:cost", "atlas-pro", "panda-zh", "swift-mini"] {
        let r = client
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Write a Python function that reverses a string"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let body: Value = r.json().await.unwrap();
        assert!(body["choices"][0]["message"]["content"].as_str().unwrap().len() > 3);
    }
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "用三句话介绍一下长城"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_leaves_every_answered_request_recorded() {
    let upstream = SimServer::start(
        SimConfig::new()
            .model(SimModel::new("m").latency(Latency::new(Duration::from_millis(30), 100.0))),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("router.db");
    let config = dir.path().join("llm-router.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[dashboard]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{}\"\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\n",
            db.display(),
            upstream.base_url()
        ),
    )
    .unwrap();
    let mut child = llm_router()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = url_in(&wait_for_line(&mut child, "proxy API"));

    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for w in 0..16 {
        let client = client.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut answered = 0u64;
            for i in 0.. {
                let stream = (w + i) % 2 == 0;
                let sent = client
                    .post(format!("{url}/v1/chat/completions"))
                    .json(&json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": format!("{w}-{i}")}]}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if !stream || body.contains("[DONE]") => answered += 1,
                        _ => break,
                    },
                    _ => break,
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    terminate(&child);
    let mut answered = 0;
    for w in workers {
        answered += w.await.unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert!(answered > 50, "the load ran: {answered} answers");

    let store = router_store::Store::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert!(
        counts.outcomes >= answered,
        "{answered} requests were answered but only {} outcomes recorded",
        counts.outcomes
    );
    assert_eq!(counts.requests, counts.outcomes, "{counts:?}");
}
