//! `llm-router check`: validate a configuration file.

use std::path::Path;
use std::process::ExitCode;

use router_gateway::config::{Config, ProcessEnv};

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(path, &ProcessEnv) {
        Ok(config) => {
            let deployments: usize = config.models.iter().map(|m| m.deployments.len()).sum();
            let enabled = config.models.iter().filter(|m| m.enabled).count();
            println!(
                "{}: ok — {} model(s) ({} enabled), {} deployment(s); proxy on {}, dashboard on {}, store {}",
                path.display(),
                config.models.len(),
                enabled,
                deployments,
                config.server.listen,
                config.dashboard.listen,
                redact_url(&config.store.url),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} problem(s) found", e.problems.len());
            Ok(ExitCode::from(2))
        }
    }
}

/// A database URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
