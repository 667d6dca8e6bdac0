//! The writer's batches into an SQLite file, through SQLite's own API.
//!
//! Through sqlx, every statement went to the connection's worker thread and back, every
//! text was copied as it was bound (`SQLITE_TRANSIENT`), and every binding was cleared again
//! after the statement ran. Here a batch borrows the connection from sqlx for its length
//! ([`lock_handle`]) and runs on the writer's own thread; it prepares one single-row INSERT
//! a table, steps it once a row, and binds each text where it already is (`SQLITE_STATIC`).
//! The borrow checker keeps the records in place until their row has been stepped: a
//! [`Row`] holds the borrow of every value bound to it.
//!
//! Why one row a statement: SQLite runs a statement of many rows for less a row, but such a
//! statement costs about 15,000 instructions a row to prepare, and sqlx's cache of prepared
//! statements is not ours to use. Prepared afresh each batch for the sizes a batch needs,
//! they cost more than they saved (callgrind; BENCHMARKS.md). A batch of 512 answered
//! requests takes about a third less time to write than through sqlx
//! (`cargo bench -p router-store --bench write`).
//!
//! [`lock_handle`]: sqlx::sqlite::SqliteConnection::lock_handle

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::SqlitePool;

use super::{ATTEMPT_JSON_BYTES, OUTCOMES, REQUESTS, insert_sql, json, to_db, valid_cost};
use crate::connect::Backend;
use crate::error::StoreError;
use crate::record::{OutcomeRecord, RequestRecord};

/// Writes `requests` and `outcomes` in one transaction; rows already stored are left alone.
pub(super) async fn write(
    pool: &SqlitePool,
    requests: &[&RequestRecord],
    outcomes: &[&OutcomeRecord],
) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await?;
    let mut handle = connection.lock_handle().await?;
    // SAFETY: while `handle` lives, sqlx's worker makes no call on this connection, and
    // `Connection` does not outlive it.
    let db = unsafe { Connection::new(handle.as_raw_handle()) };
    db.transaction(|db| {
        let mut insert = db.prepare(&insert_one(REQUESTS))?;
        for r in requests {
            bind_request!(insert.row(), r).execute()?;
        }
        let mut insert = db.prepare(&insert_one(OUTCOMES))?;
        for o in outcomes {
            bind_outcome!(insert.row(), o).execute()?;
        }
        Ok(())
    })
}

/// A table's single-row INSERT.
fn insert_one((table, columns, key): (&str, &[&str], &str)) -> String {
    insert_sql(Backend::Sqlite, table, columns, 1, key)
}

/// An open SQLite connection no other thread uses meanwhile.
struct Connection {
    db: NonNull<ffi::sqlite3>,
}

impl Connection {
    /// # Safety
    ///
    /// `db` is an open connection, and nothing else calls SQLite on it, or finalizes it,
    /// while the returned value lives.
    unsafe fn new(db: NonNull<ffi::sqlite3>) -> Connection {
        Connection { db }
    }

    /// Runs `body` between `BEGIN IMMEDIATE` (the write lock up front, waiting as the busy
    /// timeout says) and `COMMIT`, or rolls back what it did if it or the commit fails.
    fn transaction(
        &self,
        body: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.execute(c"BEGIN IMMEDIATE")?;
        let result = body(self).and_then(|()| self.execute(c"COMMIT"));
        if result.is_err() {
            // Also when the commit failed: the transaction may still be open. An error here
            // means there was nothing left to roll back.
            let _ = self.execute(c"ROLLBACK");
        }
        result
    }

    fn execute(&self, sql: &CStr) -> Result<(), StoreError> {
        // SAFETY: the connection is open (`Connection::new`) and `sql` is NUL-terminated.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        self.check(rc)
    }

    fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        let mut statement = ptr::null_mut();
        let length = c_int::try_from(sql.len())
            .map_err(|_| StoreError::InvalidArgument("statement too long".into()))?;
        // SAFETY: the connection is open, and `sql` is valid for `length` bytes.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                0,
                &mut statement,
                ptr::null_mut(),
            )
        };
        self.check(rc)?;
        let statement = NonNull::new(statement)
            .ok_or_else(|| StoreError::InvalidArgument("empty statement".into()))?;
        // SAFETY: a statement SQLite has just prepared.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(statement.as_ptr()) };
        Ok(Statement { connection: self, statement, parameters })
    }

    /// The connection's last error, if `rc` is one.
    fn check(&self, rc: c_int) -> Result<(), StoreError> {
        if rc == ffi::SQLITE_OK || rc == ffi::SQLITE_DONE {
            return Ok(());
        }
        // SAFETY: the connection is open; SQLite's message is a NUL-terminated string it
        // owns until the next call on the connection, and is copied before then.
        let (code, message) = unsafe {
            let message = ffi::sqlite3_errmsg(self.db.as_ptr());
            let message = if message.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(message).to_string_lossy().into_owned()
            };
            (ffi::sqlite3_extended_errcode(self.db.as_ptr()), message)
        };
        Err(StoreError::Sqlite { code, message })
    }
}

/// A prepared statement, finalized when dropped.
struct Statement<'c> {
    connection: &'c Connection,
    statement: NonNull<ffi::sqlite3_stmt>,
    parameters: c_int,
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared on a connection that is still open (`'c`), and finalized once.
        unsafe { ffi::sqlite3_finalize(self.statement.as_ptr()) };
    }
}

impl<'c> Statement<'c> {
    /// A row to bind, in parameter order, and then to step.
    fn row<'v>(&mut self) -> Row<'_, 'c, 'v> {
        Row { statement: self, bound: 0, failed: None, values: PhantomData }
    }
}

/// One execution of a statement. Values are bound in order; [`Row::execute`] steps the
/// statement once every parameter has one. A text is bound where it is, so everything bound
/// must outlive the row (`'v`).
struct Row<'s, 'c, 'v> {
    statement: &'s mut Statement<'c>,
    bound: c_int,
    /// The first bind SQLite refused.
    failed: Option<c_int>,
    values: PhantomData<&'v str>,
}

impl<'v> Row<'_, '_, 'v> {
    fn bind(mut self, value: impl Value<'v>) -> Self {
        self.bound += 1;
        if self.failed.is_none() {
            // SAFETY: the statement is prepared and open; a borrowed value outlives the row,
            // and the row is stepped (if at all) before it ends.
            let rc = unsafe { value.bind(self.statement.statement.as_ptr(), self.bound) };
            if rc != ffi::SQLITE_OK {
                self.failed = Some(rc);
            }
        }
        self
    }

    /// Steps the statement with the values bound, then resets it for the next row.
    fn execute(self) -> Result<(), StoreError> {
        let Row { statement, bound, failed, .. } = self;
        if let Some(rc) = failed {
            return statement.connection.check(rc);
        }
        if bound != statement.parameters {
            // Stepping now would read a value bound for an earlier row, which may be gone.
            return Err(StoreError::InvalidArgument(format!(
                "{bound} values bound to a statement of {} parameters",
                statement.parameters
            )));
        }
        let raw = statement.statement.as_ptr();
        // SAFETY: every parameter has a value bound to this row, alive for its length.
        let rc = unsafe { ffi::sqlite3_step(raw) };
        // SAFETY: as above. Resetting keeps the bindings, but nothing steps the statement
        // again until a later row has bound every parameter anew.
        unsafe { ffi::sqlite3_reset(raw) };
        statement.connection.check(rc)
    }
}

/// Something a parameter can be bound to.
trait Value<'v> {
    /// # Safety
    ///
    /// `statement` is a prepared statement whose connection is in use by this thread alone,
    /// and `index` one of its parameters. A borrowed text must stay in place until the
    /// statement has been stepped or reset and bound again.
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int;
}

impl<'v> Value<'v> for &'v str {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        // SAFETY: the caller keeps `self` in place (`'v`); SQLite only reads it.
        unsafe { bind_text(statement, index, self, ffi::SQLITE_STATIC()) }
    }
}

/// A text made for the row, gone before it is stepped: SQLite copies it.
impl<'v> Value<'v> for String {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        // SAFETY: SQLite copies the text before this returns.
        unsafe { bind_text(statement, index, &self, ffi::SQLITE_TRANSIENT()) }
    }
}

impl<'v> Value<'v> for i64 {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        // SAFETY: as the trait requires.
        unsafe { ffi::sqlite3_bind_int64(statement, index, self) }
    }
}

impl<'v> Value<'v> for bool {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        // SAFETY: as the trait requires.
        unsafe { ffi::sqlite3_bind_int64(statement, index, i64::from(self)) }
    }
}

impl<'v> Value<'v> for f64 {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        // SAFETY: as the trait requires.
        unsafe { ffi::sqlite3_bind_double(statement, index, self) }
    }
}

impl<'v, T: Value<'v>> Value<'v> for Option<T> {
    unsafe fn bind(self, statement: *mut ffi::sqlite3_stmt, index: c_int) -> c_int {
        match self {
            // SAFETY: as the trait requires, passed on.
            Some(value) => unsafe { value.bind(statement, index) },
            // SAFETY: as the trait requires.
            None => unsafe { ffi::sqlite3_bind_null(statement, index) },
        }
    }
}

/// # Safety
///
/// As [`Value::bind`], with `destructor` saying whether SQLite copies `text`.
unsafe fn bind_text(
    statement: *mut ffi::sqlite3_stmt,
    index: c_int,
    text: &str,
    destructor: ffi::sqlite3_destructor_type,
) -> c_int {
    // SAFETY: `text` is valid UTF-8 for `len` bytes; the caller says how long it stays.
    unsafe {
        ffi::sqlite3_bind_text64(
            statement,
            index,
            text.as_ptr().cast(),
            text.len() as u64,
            destructor,
            ffi::SQLITE_UTF8 as u8,
        )
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (a TEXT, b TEXT, n INTEGER, x REAL, flag INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        (dir, pool)
    }

    async fn rows(pool: &SqlitePool) -> Vec<(Option<String>, String, i64, f64, i64)> {
        sqlx::query("SELECT a, b, n, x, flag FROM t ORDER BY rowid")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
            .collect()
    }

    #[tokio::test]
    async fn rows_bind_borrowed_and_owned_values_and_commit_together() {
        let (_dir, pool) = pool().await;
        let texts = ["plain", "naïve — 中文", "nul\0inside"];
        {
            let mut connection = pool.acquire().await.unwrap();
            let mut handle = connection.lock_handle().await.unwrap();
            let db = unsafe { Connection::new(handle.as_raw_handle()) };
            db.transaction(|db| {
                let mut insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")?;
                for (n, text) in texts.iter().enumerate() {
                    let owned = format!("owned {n}");
                    let none = (n == 0).then_some(*text);
                    insert
                        .row()
                        .bind(none)
                        .bind(owned)
                        .bind(n as i64)
                        .bind(n as f64 / 2.0)
                        .bind(n % 2 == 1)
                        .execute()?;
                    insert
                        .row()
                        .bind(Some(*text))
                        .bind(*text)
                        .bind(-1i64)
                        .bind(0.0)
                        .bind(false)
                        .execute()?;
                }
                Ok(())
            })
            .unwrap();
        }
        let stored = rows(&pool).await;
        assert_eq!(stored.len(), 6);
        assert_eq!(stored[0], (Some("plain".into()), "owned 0".into(), 0, 0.0, 0));
        assert_eq!(stored[2], (None, "owned 1".into(), 1, 0.5, 1));
        for (n, text) in texts.iter().enumerate() {
            assert_eq!(
                stored[2 * n + 1].0.as_deref(),
                Some(*text),
                "texts come back byte for byte"
            );
            assert_eq!(stored[2 * n + 1].1, *text);
        }
    }

    #[tokio::test]
    async fn a_failed_row_rolls_back_the_whole_transaction() {
        let (_dir, pool) = pool().await;
        sqlx::query("CREATE UNIQUE INDEX t_a ON t (a)").execute(&pool).await.unwrap();
        let mut connection = pool.acquire().await.unwrap();
        let mut handle = connection.lock_handle().await.unwrap();
        let db = unsafe { Connection::new(handle.as_raw_handle()) };
        let error = db
            .transaction(|db| {
                let mut insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")?;
                for _ in 0..2 {
                    insert
                        .row()
                        .bind("same")
                        .bind("b")
                        .bind(1i64)
                        .bind(1.0)
                        .bind(true)
                        .execute()?;
                }
                Ok(())
            })
            .unwrap_err();
        // SQLITE_CONSTRAINT_UNIQUE: the data is wrong, so no retry.
        assert!(matches!(error, StoreError::Sqlite { code: 2067, .. }), "{error}");
        assert!(!error.is_transient());
        assert!(error.to_string().contains("UNIQUE"), "{error}");

        // A row short of values is refused before it is stepped.
        let error = db
            .transaction(|db| {
                db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")?.row().bind("a").execute()
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::InvalidArgument(_)), "{error}");
        drop(handle);
        drop(connection);
        assert!(rows(&pool).await.is_empty(), "nothing of either transaction was kept");
    }
}
