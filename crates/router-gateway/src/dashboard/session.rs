//! Logged-in sessions: a random token in an `HttpOnly` cookie, mapped in memory to the
//! operator and the session's CSRF token.
//!
//! Sessions live in this process only: a restart logs everyone out, which for one operator
//! account is a fair price for keeping no session secrets on disk. A session ends after
//! [`IDLE`] without a request, after [`LIFETIME`] in any case, or at logout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::credentials::constant_time_eq;

/// A session unused for this long is over.
pub const IDLE: Duration = Duration::from_secs(2 * 3600);
/// No session lasts longer than this.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions at once; a new login evicts the oldest beyond it.
const MAX_SESSIONS: usize = 256;

/// 32 random bytes, hex-encoded: the session token, the CSRF token, the login form token.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// What a request with a valid session cookie is allowed to know about its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub username: String,
    /// Must accompany every change the session makes (`x-csrf-token`).
    pub csrf: String,
}

impl Session {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.csrf.as_bytes())
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    created: Instant,
    last_seen: Instant,
}

impl Entry {
    fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) < LIFETIME
            && now.saturating_duration_since(self.last_seen) < IDLE
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds no invariant a panic elsewhere could break halfway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `username`; returns its token (the cookie's value).
    pub fn create(
        &self,
        username: &str,
        now: Instant,
    ) -> Result<(String, Session), getrandom::Error> {
        let token = random_token()?;
        let session = Session { username: username.to_string(), csrf: random_token()? };
        let mut entries = self.lock();
        entries.retain(|_, e| e.alive(now));
        while entries.len() >= MAX_SESSIONS {
            let oldest = entries.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| k.clone());
            match oldest {
                Some(key) => entries.remove(&key),
                None => break,
            };
        }
        entries.insert(
            token.clone(),
            Entry { session: session.clone(), created: now, last_seen: now },
        );
        Ok((token, session))
    }

    /// The session a token stands for, if it is alive; using it keeps it alive.
    pub fn get(&self, token: &str, now: Instant) -> Option<Session> {
        let mut entries = self.lock();
        match entries.get_mut(token) {
            Some(entry) if entry.alive(now) => {
                entry.last_seen = now;
                Some(entry.session.clone())
            }
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session (logout).
    pub fn remove(&self, token: &str) -> bool {
        self.lock().remove(token).is_some()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn sessions_live_until_idle_lifetime_or_logout() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (token, session) = sessions.create("ops", t0).unwrap();
        assert_eq!(sessions.get(&token, t0).as_ref(), Some(&session));
        assert_eq!(sessions.get("nope", t0), None);

        // Used every hour, it outlives the idle limit but not the lifetime.
        let mut t = t0;
        while t0 + LIFETIME > t + Duration::from_secs(3600) {
            t += Duration::from_secs(3600);
            assert!(sessions.get(&token, t).is_some(), "at {:?}", t - t0);
        }
        assert!(sessions.get(&token, t0 + LIFETIME).is_none());
        assert!(sessions.is_empty());

        let (idle, _) = sessions.create("ops", t0).unwrap();
        assert!(sessions.get(&idle, t0 + IDLE - Duration::from_secs(1)).is_some());
        assert!(sessions.get(&idle, t0 + IDLE * 2).is_none());

        let (out, _) = sessions.create("ops", t0).unwrap();
        assert!(sessions.remove(&out));
        assert!(sessions.get(&out, t0).is_none());
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let (_, a) = sessions.create("ops", now).unwrap();
        let (_, b) = sessions.create("ops", now).unwrap();
        assert_ne!(a.csrf, b.csrf);
        assert!(a.csrf_matches(&a.csrf));
        assert!(!a.csrf_matches(&b.csrf));
        assert!(!a.csrf_matches(""));
    }

    #[test]
    fn the_oldest_session_makes_room() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (first, _) = sessions.create("ops", t0).unwrap();
        for i in 1..=MAX_SESSIONS {
            sessions.create("ops", t0 + Duration::from_millis(i as u64)).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&first, t0 + Duration::from_secs(1)).is_none());
    }
}
