//! Who may log in to the dashboard: one operator account, read from the environment.
//!
//! There is no default password. `ADMIN_PASSWORD` holds the password itself, or an argon2
//! PHC string (`$argon2id$…`); `ADMIN_PASSWORD_HASH` holds a PHC string explicitly.
//! `ADMIN_USERNAME` defaults to `admin`. With no password set the dashboard serves only a
//! page saying how to set one; `llm-router demo` makes a [one-time](Credentials::one_time)
//! password instead and prints it.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::config::{Env, ProcessEnv};

/// The variable naming the operator.
pub const USERNAME_ENV: &str = "ADMIN_USERNAME";
/// The variable holding the password (or an argon2 PHC string).
pub const PASSWORD_ENV: &str = "ADMIN_PASSWORD";
/// The variable holding an argon2 PHC string.
pub const PASSWORD_HASH_ENV: &str = "ADMIN_PASSWORD_HASH";
/// The operator's name when `ADMIN_USERNAME` is not set.
pub const DEFAULT_USERNAME: &str = "admin";

/// Passwords longer than this are refused without hashing them, so that nobody can make the
/// server spend its time hashing megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why the credentials in the environment cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("both {PASSWORD_ENV} and {PASSWORD_HASH_ENV} are set; set only one")]
    Ambiguous,
    #[error(
        "{var} is not a valid argon2 hash ({reason}); make one with `llm-router hash-password`"
    )]
    InvalidHash { var: &'static str, reason: String },
    #[error("{USERNAME_ENV} must be 1 to 64 printable characters without spaces")]
    InvalidUsername,
    #[error("the password must be 1 to {MAX_PASSWORD_BYTES} bytes")]
    InvalidPassword,
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// How the password is checked.
enum Secret {
    /// The password itself, kept as its SHA-256 so that checking it takes the same time
    /// whatever the guess.
    Plain([u8; 32]),
    /// An argon2 PHC string; checking a guess costs a full argon2 run.
    Hash(String),
}

/// The operator account the dashboard accepts.
pub struct Credentials {
    username: String,
    secret: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.secret {
            Secret::Plain(_) => "password",
            Secret::Hash(_) => "argon2 hash",
        };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &kind)
            .finish()
    }
}

impl Credentials {
    /// A username and a password.
    pub fn new(username: &str, password: &SecretString) -> Result<Credentials, CredentialsError> {
        let password = password.expose_secret();
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(CredentialsError::InvalidPassword);
        }
        Ok(Credentials {
            username: valid_username(username)?,
            secret: Secret::Plain(digest(password)),
        })
    }

    /// A username and an argon2 PHC string (`$argon2id$v=19$m=…`).
    pub fn with_hash(username: &str, phc: &str) -> Result<Credentials, CredentialsError> {
        Credentials::hashed(username, phc, PASSWORD_HASH_ENV)
    }

    fn hashed(
        username: &str,
        phc: &str,
        var: &'static str,
    ) -> Result<Credentials, CredentialsError> {
        let phc = phc.trim();
        PasswordHash::new(phc)
            .map_err(|e| CredentialsError::InvalidHash { var, reason: e.to_string() })?;
        if !phc.starts_with("$argon2") {
            return Err(CredentialsError::InvalidHash { var, reason: "not an argon2 hash".into() });
        }
        Ok(Credentials {
            username: valid_username(username)?,
            secret: Secret::Hash(phc.to_string()),
        })
    }

    /// The credentials in the process environment; `None` when no password is set.
    pub fn from_env() -> Result<Option<Credentials>, CredentialsError> {
        Credentials::from_vars(&ProcessEnv)
    }

    /// The credentials in `env` (the process environment, or a map in tests).
    pub fn from_vars(env: &dyn Env) -> Result<Option<Credentials>, CredentialsError> {
        let username = env.var(USERNAME_ENV).unwrap_or_else(|| DEFAULT_USERNAME.to_string());
        match (env.var(PASSWORD_ENV), env.var(PASSWORD_HASH_ENV)) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(CredentialsError::Ambiguous),
            (None, Some(phc)) => Credentials::hashed(&username, &phc, PASSWORD_HASH_ENV).map(Some),
            // A PHC string where a password is expected is meant as a hash: nobody picks a
            // password that parses as an argon2 hash.
            (Some(value), None) if value.trim_start().starts_with("$argon2") => {
                Credentials::hashed(&username, &value, PASSWORD_ENV).map(Some)
            }
            (Some(password), None) => {
                Credentials::new(&username, &SecretString::from(password)).map(Some)
            }
        }
    }

    /// Fresh credentials for `admin` with a random password, for `llm-router demo` when no
    /// password is set. Returns the password so that it can be shown once.
    pub fn one_time() -> Result<(Credentials, SecretString), CredentialsError> {
        // 20 characters from a 32-letter alphabet without look-alikes: 100 bits.
        const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes).map_err(|e| CredentialsError::Hashing(e.to_string()))?;
        let password: String =
            bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
        let password = SecretString::from(password);
        Ok((Credentials::new(DEFAULT_USERNAME, &password)?, password))
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the check costs an argon2 run (run it off the async threads).
    pub fn is_hashed(&self) -> bool {
        matches!(self.secret, Secret::Hash(_))
    }

    /// Checks a login attempt. Both parts are always checked, so the time taken does not
    /// tell a wrong username from a wrong password.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let name_ok = constant_time_eq(&digest(username), &digest(&self.username));
        let password_ok = password.len() <= MAX_PASSWORD_BYTES
            && match &self.secret {
                Secret::Plain(expected) => constant_time_eq(&digest(password), expected),
                Secret::Hash(phc) => {
                    Argon2::default().verify_password(password.as_bytes(), phc.as_str()).is_ok()
                }
            };
        name_ok & password_ok
    }
}

/// An argon2id PHC string for `password`, for `ADMIN_PASSWORD_HASH` (what a
/// `llm-router hash-password` command prints).
pub fn hash_password(password: &SecretString) -> Result<String, CredentialsError> {
    let password = password.expose_secret();
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(CredentialsError::InvalidPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| CredentialsError::Hashing(e.to_string()))
}

fn valid_username(username: &str) -> Result<String, CredentialsError> {
    let username = username.trim();
    let ok = (1..=64).contains(&username.chars().count())
        && username.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if ok { Ok(username.to_string()) } else { Err(CredentialsError::InvalidUsername) }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equality without an early exit, so the time taken says nothing about where two secrets
/// differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use argon2::{Algorithm, Params, Version};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A valid hash with the smallest parameters, so tests do not spend seconds hashing.
    fn cheap_hash(password: &str) -> String {
        let params = Params::new(Params::MIN_M_COST, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    #[test]
    fn nothing_set_means_no_credentials() {
        assert!(Credentials::from_vars(&env(&[])).unwrap().is_none());
        // A username alone is not a way in.
        assert!(Credentials::from_vars(&env(&[("ADMIN_USERNAME", "ops")])).unwrap().is_none());
    }

    #[test]
    fn a_plain_password_checks_both_parts() {
        let c = Credentials::from_vars(&env(&[
            ("ADMIN_USERNAME", "ops"),
            ("ADMIN_PASSWORD", "s3cret pass"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.username(), "ops");
        assert!(!c.is_hashed());
        assert!(c.verify("ops", "s3cret pass"));
        assert!(!c.verify("ops", "s3cret pas"));
        assert!(!c.verify("admin", "s3cret pass"));
        assert!(!c.verify("ops", ""));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_hash_in_either_variable_is_used_as_a_hash() {
        let phc = cheap_hash("hunter2 but longer");
        for var in ["ADMIN_PASSWORD_HASH", "ADMIN_PASSWORD"] {
            let c = Credentials::from_vars(&env(&[(var, &phc)])).unwrap().unwrap();
            assert_eq!(c.username(), "admin");
            assert!(c.is_hashed(), "{var}");
            assert!(c.verify("admin", "hunter2 but longer"), "{var}");
            assert!(!c.verify("admin", "hunter2"), "{var}");
            // The PHC string itself is not the password.
            assert!(!c.verify("admin", &phc), "{var}");
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let both = env(&[("ADMIN_PASSWORD", "a"), ("ADMIN_PASSWORD_HASH", "b")]);
        assert_eq!(Credentials::from_vars(&both).unwrap_err(), CredentialsError::Ambiguous);
        let bad_hash =
            Credentials::from_vars(&env(&[("ADMIN_PASSWORD_HASH", "$argon2id$nonsense")]));
        assert!(matches!(
            bad_hash,
            Err(CredentialsError::InvalidHash { var: "ADMIN_PASSWORD_HASH", .. })
        ));
        let not_argon = Credentials::with_hash("admin", "$pbkdf2$i=1$c2FsdA$aGFzaA");
        assert!(matches!(not_argon, Err(CredentialsError::InvalidHash { .. })), "{not_argon:?}");
        let spaced =
            Credentials::from_vars(&env(&[("ADMIN_USERNAME", "a b"), ("ADMIN_PASSWORD", "x")]));
        assert_eq!(spaced.unwrap_err(), CredentialsError::InvalidUsername);
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            Credentials::new("admin", &SecretString::from(long)).unwrap_err(),
            CredentialsError::InvalidPassword
        );
    }

    #[test]
    fn one_time_passwords_are_long_random_and_work() {
        let (c1, p1) = Credentials::one_time().unwrap();
        let (_, p2) = Credentials::one_time().unwrap();
        assert_eq!(p1.expose_secret().len(), 20);
        assert_ne!(p1.expose_secret(), p2.expose_secret());
        assert!(c1.verify("admin", p1.expose_secret()));
        assert!(!c1.verify("admin", p2.expose_secret()));
    }

    #[test]
    fn hash_password_makes_a_usable_hash() {
        let phc = hash_password(&SecretString::from("correct horse".to_string())).unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let c = Credentials::with_hash("admin", &phc).unwrap();
        assert!(c.verify("admin", "correct horse"));
        assert!(!c.verify("admin", "correct horse "));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
