//! `llm-router hash-password`: an argon2 hash for `ADMIN_PASSWORD_HASH`, so the dashboard's
//! password need not sit in the environment in the clear.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use router_gateway::dashboard::hash_password;
use secrecy::SecretString;

pub fn run() -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (echoed; pipe it in to keep it off the screen): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the password")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    let hash = hash_password(&SecretString::from(password.to_string()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{hash}");
    eprintln!("put it in the environment or .env as ADMIN_PASSWORD_HASH='{hash}'");
    Ok(ExitCode::SUCCESS)
}
