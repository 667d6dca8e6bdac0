//! Turning a database URL into a connection pool set up for its backend.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, AssertSqlSafe, PgPool, SqlitePool};

use crate::error::StoreError;

/// The database behind a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection settings beyond the URL. The defaults suit a single gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Pool size. `None` picks one per backend: 1 for an in-memory SQLite database (which
    /// lives and dies with its one connection), 4 for a SQLite file, 10 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another connection's lock before failing
    /// with "database is locked".
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Where a URL points, as far as setting up the pool is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An SQLite database that lives in memory: it exists for as long as its connection does.
    SqliteMemory {
        url: String,
    },
    /// An SQLite file; `url` asks the driver to create it when missing.
    SqliteFile {
        url: String,
        path: PathBuf,
    },
    Postgres {
        url: String,
    },
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(sqlite_target(url)),
            "postgres" | "postgresql" => Ok(Target::Postgres { url: url.to_owned() }),
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::SqliteMemory { .. } | Target::SqliteFile { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Opens the pool, creating the SQLite file's directory first if it is missing.
    pub(crate) async fn connect(&self, options: &StoreOptions) -> Result<AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout);
        match self {
            Target::SqliteMemory { url } => {
                // Every new connection would open a new, empty database, so keep exactly one
                // and never let the pool retire it.
                let pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .after_connect(sqlite_setup(options.busy_timeout, false));
                Ok(pool.connect(url).await?)
            }
            Target::SqliteFile { url, path } => {
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let pool = pool
                    .max_connections(options.max_connections.unwrap_or(4))
                    .after_connect(sqlite_setup(options.busy_timeout, true));
                Ok(pool.connect(url).await?)
            }
            Target::Postgres { url } => {
                let pool = pool.max_connections(options.max_connections.unwrap_or(10));
                Ok(pool.connect(url).await?)
            }
        }
    }
}

/// A pool of the backend's own driver that the store's batches are written through (see
/// [`Store`](crate::Store)).
#[derive(Debug, Clone)]
pub(crate) enum Bulk {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Target {
    /// The [`Bulk`] writer's pool, set up as [`Target::connect`] sets up the others: one
    /// connection for an SQLite file (which has one writer at a time anyway), two for
    /// PostgreSQL (the writer's batches follow one another). None for an in-memory SQLite
    /// database, which lives in the one connection of the other pool. It connects on its
    /// first use, after the schema has been brought up to date.
    pub(crate) fn bulk_writer(&self, options: &StoreOptions) -> Result<Option<Bulk>, StoreError> {
        match self {
            Target::SqliteMemory { .. } => Ok(None),
            Target::SqliteFile { url, .. } => {
                // A batch's multi-row INSERT keeps a statement journal, the pages it changed
                // as they were, so that a failing row undoes only its own statement. SQLite
                // spills that journal to a new temporary file past 64 KiB — four of these
                // 16 KiB pages, so nearly every batch — and creates, writes and deletes the
                // file each time; in memory it costs neither the calls nor the file.
                let connect = SqliteConnectOptions::from_str(url)?
                    .busy_timeout(options.busy_timeout)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_lazy_with(connect);
                Ok(Some(Bulk::Sqlite(pool)))
            }
            Target::Postgres { url } => {
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_lazy(url)?;
                Ok(Some(Bulk::Postgres(pool)))
            }
        }
    }
}

type AfterConnect = Box<
    dyn Fn(
            &mut sqlx::AnyConnection,
            sqlx::pool::PoolConnectionMetadata,
        ) -> futures_util::future::BoxFuture<'_, Result<(), sqlx::Error>>
        + Send
        + Sync,
>;

/// Per-connection SQLite settings. The Any driver takes no SQLite options, so they are set
/// with PRAGMAs as each connection opens.
fn sqlite_setup(busy_timeout: Duration, file: bool) -> AfterConnect {
    let busy_ms = busy_timeout.as_millis();
    Box::new(move |conn, _meta| {
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}")))
                .execute(&mut *conn)
                .await?;
            if file {
                // 16 KiB pages for a new file (an existing one keeps its own): a request's
                // row is about 1.2 KiB, which leaves a tenth of a 4 KiB page unused, and
                // every page a commit changes is one more write to the WAL.
                // WAL lets readers (the dashboard) run while the writer commits; NORMAL
                // sync is durable across application crashes in WAL mode and much faster.
                sqlx::raw_sql(
                    "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL",
                )
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
    })
}

/// Reads an `sqlite:` URL the way the SQLite driver does (`sqlite:path`, `sqlite://path`,
/// `sqlite:///absolute/path`, `sqlite::memory:`, `?mode=memory`), and asks for the file to be
/// created when the URL does not say otherwise.
fn sqlite_target(url: &str) -> Target {
    let rest = url.get("sqlite:".len()..).unwrap_or_default();
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (database, params) = match rest.split_once('?') {
        Some((database, params)) => (database, Some(params)),
        None => (rest, None),
    };
    let mode = params.and_then(|params| {
        params.split('&').find_map(|pair| pair.strip_prefix("mode=")).map(str::to_owned)
    });
    if database == ":memory:" || mode.as_deref() == Some("memory") {
        return Target::SqliteMemory { url: url.to_owned() };
    }
    let url = match (&mode, params) {
        (Some(_), _) => url.to_owned(),
        (None, Some(params)) if !params.is_empty() => format!("{url}&mode=rwc"),
        (None, Some(_)) => format!("{url}mode=rwc"),
        (None, None) => format!("{url}?mode=rwc"),
    };
    Target::SqliteFile { url, path: PathBuf::from(percent_decode(database)) }
}

/// Undoes %XX escapes (the SQLite driver accepts them in file names, for `?` and `#`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 3).and_then(|hex| {
            std::str::from_utf8(hex).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok())
        });
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str, path: &str) -> Target {
        Target::SqliteFile { url: url.to_owned(), path: PathBuf::from(path) }
    }

    #[test]
    fn reads_sqlite_urls() {
        assert_eq!(
            Target::parse("sqlite:data/router.db").unwrap(),
            file("sqlite:data/router.db?mode=rwc", "data/router.db")
        );
        assert_eq!(
            Target::parse("sqlite://data/router.db").unwrap(),
            file("sqlite://data/router.db?mode=rwc", "data/router.db")
        );
        assert_eq!(
            Target::parse("sqlite:///var/lib/r.db?cache=private").unwrap(),
            file("sqlite:///var/lib/r.db?cache=private&mode=rwc", "/var/lib/r.db")
        );
        assert_eq!(
            Target::parse("sqlite:ro.db?mode=ro").unwrap(),
            file("sqlite:ro.db?mode=ro", "ro.db")
        );
        assert_eq!(
            Target::parse("sqlite:my%3Fdb.sqlite").unwrap(),
            file("sqlite:my%3Fdb.sqlite?mode=rwc", "my?db.sqlite")
        );
        for memory in ["sqlite::memory:", "sqlite://:memory:", "sqlite://?mode=memory"] {
            assert_eq!(
                Target::parse(memory).unwrap(),
                Target::SqliteMemory { url: memory.to_owned() }
            );
        }
    }

    #[test]
    fn the_batch_writers_sqlite_connection_keeps_its_temporary_files_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::parse(&format!("sqlite://{}/store.db", dir.path().display())).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (temp_store, journal) = runtime
            .block_on(async {
                let Some(Bulk::Sqlite(pool)) =
                    target.bulk_writer(&StoreOptions::default()).unwrap()
                else {
                    panic!("an SQLite file gets an SQLite batch writer");
                };
                let temp_store: i64 =
                    sqlx::query_scalar("PRAGMA temp_store").fetch_one(&pool).await?;
                let journal: String =
                    sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await?;
                Ok::<_, sqlx::Error>((temp_store, journal))
            })
            .unwrap();
        // 2 is MEMORY.
        assert_eq!((temp_store, journal.as_str()), (2, "wal"));
    }

    #[test]
    fn reads_postgres_urls_and_rejects_others() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db", "POSTGRES://u@h/db"] {
            assert_eq!(Target::parse(url).unwrap().backend(), Backend::Postgres);
        }
        let error = Target::parse("mysql://root:secret@h/db").unwrap_err();
        assert!(matches!(&error, StoreError::UnsupportedUrl(scheme) if scheme == "mysql"));
        assert!(!error.to_string().contains("secret"));
        assert!(matches!(Target::parse("router.db"), Err(StoreError::UnsupportedUrl(_))));
    }

    #[test]
    fn percent_decoding_leaves_stray_percents_alone() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }
}
