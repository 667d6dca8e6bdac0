//! What can go wrong talking to the database.

use std::path::PathBuf;

/// An error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme is not one the store speaks. Only the scheme is kept: the rest of a
    /// URL may carry a password.
    #[error("unsupported database URL scheme `{0}` (expected `sqlite:` or `postgres://`)")]
    UnsupportedUrl(String),

    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A record cannot be stored as it is (a number out of range, a cost that is not finite).
    /// Retrying will not help.
    #[error("invalid record: {0}")]
    InvalidRecord(String),

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A stored value the store cannot read back, such as an unknown status word.
    #[error("unreadable value {value:?} in column `{column}`")]
    Corrupt { column: &'static str, value: String },

    #[error("cannot serialise to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// True for errors that may go away if the same operation is tried again a little later:
    /// a lost connection, a pool that is momentarily exhausted, a lock held by another writer,
    /// a serialisation failure. False for errors in the data or the SQL.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(error) => is_transient_sqlx(error),
            _ => false,
        }
    }
}

fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            // The Any driver passes the backend's own error through.
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                is_transient_sqlite_code(&code)
            } else {
                is_transient_sqlstate(&code)
            }
        }
        _ => false,
    }
}

/// SQLite reports extended result codes, as decimal numbers.
fn is_transient_sqlite_code(code: &str) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    // The primary result code is the low byte of the extended one.
    code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// PostgreSQL reports SQLSTATEs.
fn is_transient_sqlstate(code: &str) -> bool {
    // Class 08: connection exception. Class 53: insufficient resources (too many
    // connections, out of memory). 40001 / 40P01: serialisation failure, deadlock. 55P03:
    // lock not available. 57P01..57P03: the server is shutting down or starting up.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_database_codes() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_LOCKED_SHAREDCACHE (262).
        for code in ["5", "517", "6", "262"] {
            assert!(is_transient_sqlite_code(code), "{code} should be transient");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_FULL.
        for code in ["2067", "1", "13", "not a number"] {
            assert!(!is_transient_sqlite_code(code), "{code} should be permanent");
        }
        for code in ["08006", "08001", "40001", "40P01", "53300", "57P01", "55P03"] {
            assert!(is_transient_sqlstate(code), "{code} should be transient");
        }
        // Unique violation, syntax error, invalid text representation, check violation.
        for code in ["23505", "42601", "22P02", "23514"] {
            assert!(!is_transient_sqlstate(code), "{code} should be permanent");
        }
    }

    #[test]
    fn only_database_trouble_is_transient() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::InvalidRecord("cost is NaN".into()).is_transient());
    }
}
