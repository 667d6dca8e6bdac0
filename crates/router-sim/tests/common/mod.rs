//! Helpers shared by the HTTP tests.

#![allow(dead_code)]

use std::time::Duration;

use router_sim::{JudgeConfig, SimConfig, SimModel, SimServer, Style};
use serde_json::{Value, json};

/// A server with a terse, a verbose and a Chinese-first model, and a judge.
pub async fn sim() -> SimServer {
    SimServer::start(
        SimConfig::new()
            .model(SimModel::new("fast").style(Style::Terse))
            .model(SimModel::new("smart").style(Style::Verbose))
            .model(SimModel::new("zh").style(Style::ChineseFirst))
            .judge(JudgeConfig::new("llama3.1:8b")),
    )
    .await
    .expect("sim starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

pub fn openai_body(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

pub fn anthropic_body(model: &str, text: &str) -> Value {
    json!({ "model": model, "max_tokens": 1024, "messages": [{ "role": "user", "content": text }] })
}

pub async fn post(sim: &SimServer, path: &str, body: &Value) -> reqwest::Response {
    client().post(format!("{}{path}", sim.base_url())).json(body).send().await.expect("response")
}

pub async fn post_json(sim: &SimServer, path: &str, body: &Value) -> (u16, Value) {
    let response = post(sim, path, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// One server-sent event.
#[derive(Debug)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("bad event data {:?}: {e}", self.data))
    }
}

/// Parses a complete SSE body.
pub fn parse_sse(body: &str) -> Vec<Event> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            Event { name, data: data.join("\n") }
        })
        .collect()
}

/// A judge call in the shape the gateway is meant to send.
pub fn judge_body() -> Value {
    json!({
        "model": "llama3.1:8b",
        "messages": [
            { "role": "system", "content": "Pick the best model for the query." },
            { "role": "user", "content": "Write a quicksort in Rust" }
        ],
        "stream": false,
        "format": {
            "type": "object",
            "properties": {
                "model": { "type": "string", "enum": ["smart", "fast"] },
                "domain": { "type": "string", "enum": ["code", "math", "general"] },
                "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                "reason": { "type": "string" }
            },
            "required": ["model", "domain", "confidence"]
        },
        "options": { "temperature": 0 },
        "keep_alive": "30m"
    })
}
