//! One module per subcommand.

pub mod analyze;
pub mod check;
pub mod demo;
pub mod eval;
pub mod features_eval;
pub mod feedback;
pub mod hash_password;
pub mod init_db;
pub mod models;
pub mod serve;
pub mod stats;

use std::path::Path;

use router_gateway::config::{Config, ProcessEnv};

/// Loads and validates the config; on errors prints them (file, line, key) and returns
/// `None`, so the caller exits non-zero.
pub fn load_config(path: &Path) -> Option<Config> {
    match Config::load(path, &ProcessEnv) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{} problem(s) in the configuration; nothing was started. `llm-router check` re-checks it.",
                e.problems.len()
            );
            None
        }
    }
}

/// Loads the config for a command that only reads (missing secrets are fine).
pub fn inspect_config(path: &Path) -> Option<Config> {
    match Config::load_for_inspection(path, &ProcessEnv) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} problem(s) in the configuration.", e.problems.len());
            None
        }
    }
}

/// A multi-threaded Tokio runtime for commands that do I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// A runtime of one worker thread, for background work beside threads that serve on
/// runtimes of their own.
pub fn background_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
