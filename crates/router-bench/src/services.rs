//! The processes a run starts — the fake upstream, nginx, the other gateways when asked for,
//! this gateway — and how they are started, waited for and stopped.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process whose output goes to a log file. Dropping it kills the process.
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `command`, its stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Service> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Service { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The end of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Waits until `url` answers over HTTP (any status), failing early if the process exits.
    pub async fn wait_for_http(&mut self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}) before it was ready:\n{}", self.name, self.log_tail());
            }
            if client.get(url).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer on {url} within {timeout:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the process to stop (SIGTERM) and waits up to `grace` for it; kills it after
    /// that.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        // The process may have exited already; then there is nothing to signal.
        if self.child.try_wait()?.is_none() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                let status = self.child.wait()?;
                bail!("{} did not stop within {grace:?} and was killed ({status})", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where a hop listens, and the headers every request to it carries (beyond the content type).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The base URL; `/v1/chat/completions` is appended.
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Endpoint {
    /// A hop that needs no headers of its own.
    pub fn plain(url: String) -> Endpoint {
        Endpoint { url, headers: Vec::new() }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The nginx configuration of the reference hop: a plain reverse proxy to `upstream_port`
/// with pooled keep-alive connections and no buffering (as a streaming API needs), as many
/// workers as cores, no access log.
pub fn nginx_config(dir: &Path, listen_port: u16, upstream_port: u16) -> String {
    let d = dir.display();
    format!(
        "worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    upstream fake_upstream {{
        server 127.0.0.1:{upstream_port};
        keepalive 512;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://fake_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"
    )
}

/// LiteLLM's proxy configuration: one model, `model`, passed on in the OpenAI format to the
/// fake upstream at `upstream_url`. No database, no virtual keys, no callbacks: LiteLLM's
/// lightest way of proxying, as nginx and the gateway here authenticate no client either.
pub fn litellm_config(model: &str, upstream_url: &str) -> String {
    format!(
        "model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream_url}/v1
      api_key: not-used
litellm_settings:
  telemetry: false
"
    )
}

/// Logging for LiteLLM's web server (uvicorn): start-up and errors, and no line a request,
/// as nginx runs with `access_log off`.
pub const LITELLM_LOG_CONFIG: &str = r#"{
  "version": 1,
  "disable_existing_loggers": false,
  "formatters": { "plain": { "format": "%(asctime)s %(levelname)s %(name)s: %(message)s" } },
  "handlers": {
    "stderr": { "class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr" }
  },
  "loggers": {
    "uvicorn": { "handlers": ["stderr"], "level": "INFO" },
    "uvicorn.access": { "handlers": ["stderr"], "level": "WARNING", "propagate": false }
  }
}
"#;

/// The environment LiteLLM's proxy runs in.
pub const LITELLM_ENV: [(&str, &str); 3] = [
    // Its table of model prices from the installed package, not fetched from GitHub.
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    // It refuses to start without a master key unless told that none is meant.
    ("LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY", "true"),
    ("LITELLM_LOG", "ERROR"),
];

/// The judge a gateway asks: the fake Ollama judge of the sim, asked about every `auto`
/// request (its answers cached by prompt).
pub struct JudgeSetup<'a> {
    pub url: &'a str,
    pub model: &'a str,
}

/// How the gateway serves the proxy API; `None` leaves a setting at the gateway's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Serving {
    /// `server.threads` (the gateway's default: one per CPU; 0: one shared runtime).
    pub threads: Option<u32>,
    /// `server.busy_poll_us` (the gateway's default: off).
    pub busy_poll_us: Option<u32>,
}

/// The gateway's configuration: `(model, upstream base URL)` pairs, served in the OpenAI
/// format; the store on (a SQLite file, as by default); no dashboard; served as `serving`
/// says.
pub fn gateway_config(
    listen_port: u16,
    models: &[(&str, &str)],
    db: &Path,
    judge: Option<JudgeSetup<'_>>,
    serving: Serving,
) -> String {
    let threads = serving.threads.map(|n| format!("threads = {n}\n")).unwrap_or_default();
    let busy_poll =
        serving.busy_poll_us.map(|us| format!("busy_poll_us = {us}\n")).unwrap_or_default();
    let mut toml = format!(
        "[server]
listen = \"127.0.0.1:{listen_port}\"
{threads}{busy_poll}
[dashboard]
enabled = false

[store]
url = \"sqlite://{}\"

",
        db.display()
    );
    match judge {
        Some(judge) => toml.push_str(&format!(
            "[judge]\nmode = \"always\"\napi = \"ollama\"\nurl = \"{}\"\nmodel = \"{}\"\ntimeout_ms = 1500\n\n",
            judge.url, judge.model
        )),
        None => toml.push_str("[judge]\nmode = \"off\"\n\n"),
    }
    // Different prices and strengths, so `auto` has a real choice to make.
    for (i, (name, upstream_url)) in models.iter().enumerate() {
        let (input, output, strengths) = match i % 2 {
            0 => (0.15, 0.6, "[\"chat\", \"writing\"]"),
            _ => (2.5, 10.0, "[\"code\", \"math\", \"reasoning\"]"),
        };
        toml.push_str(&format!(
            "[[models]]
name = \"{name}\"
provider = \"openai-compatible\"
base_url = \"{upstream_url}/v1\"
input_price = {input}
output_price = {output}
context_window = 128000
capabilities = {{ streaming = true, tools = true, json = true }}
strengths = {strengths}

"
        ));
    }
    toml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        assert!(port > 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn nginx_config_proxies_to_the_upstream_without_buffering() {
        let conf = nginx_config(Path::new("/tmp/run"), 9000, 9001);
        assert!(conf.contains("listen 127.0.0.1:9000;"));
        assert!(conf.contains("server 127.0.0.1:9001;"));
        assert!(conf.contains("proxy_buffering off;"));
        assert!(conf.contains("pid /tmp/run/nginx.pid;"));
    }

    #[test]
    fn litellm_config_passes_the_model_on_to_the_upstream() {
        let conf = litellm_config("bench-small", "http://127.0.0.1:9001");
        assert!(conf.contains("- model_name: bench-small\n"));
        assert!(conf.contains("model: openai/bench-small\n"));
        assert!(conf.contains("api_base: http://127.0.0.1:9001/v1\n"));
        let logging: serde_json::Value = serde_json::from_str(LITELLM_LOG_CONFIG).unwrap();
        assert_eq!(logging["loggers"]["uvicorn.access"]["level"], "WARNING");
    }

    #[test]
    fn gateway_config_names_the_models_and_the_judge() {
        let upstream = "http://127.0.0.1:9001";
        let off = gateway_config(
            9000,
            &[("a", upstream), ("b", upstream)],
            Path::new("/tmp/g.db"),
            None,
            Serving::default(),
        );
        assert!(off.contains("mode = \"off\""));
        assert!(off.contains("name = \"a\"") && off.contains("name = \"b\""));
        assert!(off.contains("base_url = \"http://127.0.0.1:9001/v1\""));
        assert!(off.contains("url = \"sqlite:///tmp/g.db\""));
        let judge = JudgeSetup { url: "http://127.0.0.1:9001", model: "judge" };
        let shared = Serving { threads: Some(0), busy_poll_us: None };
        let on =
            gateway_config(9000, &[("a", upstream)], Path::new("/tmp/g.db"), Some(judge), shared);
        assert!(on.contains("mode = \"always\"") && on.contains("model = \"judge\""));
        assert!(on.contains("threads = 0") && !off.contains("threads"));
        let polling = Serving { threads: None, busy_poll_us: Some(200) };
        let polled =
            gateway_config(9000, &[("a", upstream)], Path::new("/tmp/g.db"), None, polling);
        assert!(polled.contains("busy_poll_us = 200") && !off.contains("busy_poll"));
        // The gateway's own validator accepts all three.
        let env = std::collections::HashMap::<String, String>::new();
        for text in [off, on, polled] {
            router_gateway::Config::parse(&text, Path::new("bench.toml"), &env)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }
}
