//! The [`Store`]: the pool, the schema, and every write.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Postgres, Row, Sqlite};

use crate::connect::{Backend, Bulk, StoreOptions, Target};
use crate::error::StoreError;
use crate::json;
use crate::migrate::migrator;
use crate::record::{
    AuditRecord, Counts, FeedbackRecord, OutcomeRecord, Record, RequestRecord, StateEntry,
};
use crate::sql::{from_db, get_i64, get_string, now_ms, to_db};

/// Binds a request row's values to `$query`, in the order of [`REQUEST_COLUMNS`]: the same
/// for the Any driver and the SQLite driver's own, whose query types differ, and whose texts
/// go in as `$text` makes them ([`borrowed`] for the Any driver, [`shared`] for SQLite's).
macro_rules! bind_request {
    ($query:expr, $r:expr, $text:expr) => {
        $query
            .bind($text($r.id.as_str()))
            .bind($r.received_at_ms)
            .bind($text($r.api.as_str()))
            .bind($text($r.requested_model.as_str()))
            .bind($r.profile.as_deref().map($text))
            .bind($r.stream)
            .bind($text($r.prompt.kind()))
            .bind($r.prompt.text().map($text))
            .bind(i64::from($r.message_count))
            .bind($text($r.features_json.as_str()))
            .bind($r.language.as_deref().map($text))
            .bind($r.domain.as_deref().map($text))
            .bind($r.complexity.as_deref().map($text))
            .bind($text($r.chosen_model.as_str()))
            .bind($text($r.source.as_str()))
            .bind($text($r.reason.as_str()))
            .bind($text($r.ranking_json.as_str()))
            .bind(to_db($r.decision_us, "decision_us")?)
    };
}

/// Binds an outcome row's values to `$query`, in the order of [`OUTCOME_COLUMNS`].
macro_rules! bind_outcome {
    ($query:expr, $o:expr, $text:expr) => {
        $query
            .bind($text($o.request_id.as_str()))
            .bind($o.finished_at_ms)
            .bind($text($o.status.as_str()))
            .bind(i64::from($o.http_status))
            .bind($o.model.as_deref().map($text))
            .bind($o.deployment.as_deref().map($text))
            .bind(to_db($o.latency_ms, "latency_ms")?)
            .bind($o.ttft_ms.map(|ttft| to_db(ttft, "ttft_ms")).transpose()?)
            .bind(to_db($o.input_tokens, "input_tokens")?)
            .bind(to_db($o.output_tokens, "output_tokens")?)
            .bind(valid_cost($o)?)
            .bind($o.error_kind.as_deref().map($text))
            .bind($o.error_message.as_deref().map($text))
            .bind(json::text_of(&$o.attempts, ATTEMPT_JSON_BYTES * $o.attempts.len().max(1))?)
    };
}

/// Inserts a batch's requests and then its outcomes, several rows a statement, on a
/// connection of driver `$db`; `$text` as in [`bind_request`].
macro_rules! insert_all {
    ($db:ty, $conn:expr, $backend:expr, $requests:expr, $outcomes:expr, $text:expr) => {
        for chunk in chunks($backend, $requests, request_size) {
            insert_rows::<$db, _>($conn, $backend, REQUESTS, chunk, |query, r| {
                Ok(bind_request!(query, r, $text))
            })
            .await?;
        }
        for chunk in chunks($backend, $outcomes, outcome_size) {
            insert_rows::<$db, _>($conn, $backend, OUTCOMES, chunk, |query, o| {
                Ok(bind_outcome!(query, o, $text))
            })
            .await?;
        }
    };
}

/// The database behind the router: SQLite or PostgreSQL, through the same methods.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// A pool of the backend's own driver that the writer's batches of requests and outcomes
    /// go through (not for an in-memory SQLite database). The Any driver copies every text
    /// value twice on its way (into its own argument buffer, then into the backend driver's),
    /// four allocations a value; SQLite's driver takes an `Arc<str>` as it is, and
    /// PostgreSQL's writes a borrowed `&str` straight into its buffer.
    bulk: Option<Bulk>,
    backend: Backend,
}

/// Rows removed by [`Store::prune`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub requests: u64,
    pub outcomes: u64,
    pub feedback: u64,
}

impl Store {
    /// Connects to `url` with default options: `sqlite:path/to/file.db` (the file and its
    /// directory are created when missing), `sqlite::memory:`, or
    /// `postgres://user@host/db` (`?options=-c%20search_path%3Dschema` picks a schema).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let target = Target::parse(url)?;
        let pool = target.connect(options).await?;
        let bulk = target.bulk_writer(options)?;
        Ok(Store { pool, bulk, backend: target.backend() })
    }

    /// Brings the schema up to date. Safe to run on every start, and from several replicas
    /// at once (PostgreSQL serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; queries made afterwards fail.
    pub async fn close(&self) {
        match &self.bulk {
            Some(Bulk::Sqlite(pool)) => pool.close().await,
            Some(Bulk::Postgres(pool)) => pool.close().await,
            None => {}
        }
        self.pool.close().await;
    }

    /// Writes `records` in one transaction: all of them or, on error, none.
    ///
    /// Requests are written before outcomes, feedback and audit entries, whatever their order
    /// in the slice (though the schema has no foreign keys that would require it).
    /// Writing is idempotent, so a batch may be retried after an error that left it unclear
    /// whether the commit happened: a request or outcome that is already stored is left as
    /// it is (the first write wins), feedback replaces stored feedback unless it is older,
    /// and only audit records would be repeated.
    pub async fn write_batch(&self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // The writer hands over rows ([`Record::into_row`]); a caller that did not gets
        // its routed requests built here.
        let built = records
            .iter()
            .filter_map(|record| match record {
                Record::Routed(routed) => Some(routed.as_ref().clone().into_record()),
                _ => None,
            })
            .collect::<Result<Vec<RequestRecord>, StoreError>>()?;
        let mut requests: Vec<&RequestRecord> = built.iter().collect();
        let mut outcomes = Vec::new();
        let mut feedback = Vec::new();
        let mut audits = Vec::new();
        for record in records {
            match record {
                Record::Request(request) => requests.push(request.as_ref()),
                Record::Routed(_) => {}
                Record::Outcome(outcome) => outcomes.push(outcome.as_ref()),
                Record::Feedback(record) => feedback.push(record),
                Record::Audit(audit) => audits.push(audit),
            }
        }
        // Requests and outcomes are the bulk of the traffic: several rows per statement
        // save a round trip per row. A batch of nothing else (almost every batch) goes
        // through the backend driver's own connection when there is one.
        if feedback.is_empty() && audits.is_empty() {
            match &self.bulk {
                Some(Bulk::Sqlite(pool)) => {
                    let mut tx = pool.begin().await?;
                    insert_all!(Sqlite, &mut tx, Backend::Sqlite, &requests, &outcomes, shared);
                    return Ok(tx.commit().await?);
                }
                Some(Bulk::Postgres(pool)) => {
                    let mut tx = pool.begin().await?;
                    insert_all!(
                        Postgres,
                        &mut tx,
                        Backend::Postgres,
                        &requests,
                        &outcomes,
                        borrowed
                    );
                    return Ok(tx.commit().await?);
                }
                None => {}
            }
        }
        let mut tx = self.pool.begin().await?;
        insert_all!(Any, &mut tx, self.backend, &requests, &outcomes, borrowed);
        for record in feedback {
            upsert_feedback(&mut tx, record).await?;
        }
        for audit in audits {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores feedback right away (rather than through the writer), replacing earlier
    /// feedback for the same decision. Feedback older than the stored one is ignored.
    pub async fn upsert_feedback(&self, feedback: &FeedbackRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        upsert_feedback(&mut conn, feedback).await
    }

    /// Appends to the audit log right away and returns the entry's id.
    pub async fn audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, record).await
    }

    /// Stores a named blob of learned state, replacing any earlier value.
    pub async fn put_state(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO learned_state (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_state(&self, name: &str) -> Result<Option<StateEntry>, StoreError> {
        let row = sqlx::query("SELECT name, value, updated_at FROM learned_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| state_from_row(&row)).transpose()
    }

    /// Every state entry whose name starts with `prefix` (e.g. `posteriors/` for each
    /// replica's share), by name.
    pub async fn list_state(&self, prefix: &str) -> Result<Vec<StateEntry>, StoreError> {
        // substr rather than LIKE: no escaping of `%` and `_`, and no collation surprises.
        let rows = sqlx::query(
            "SELECT name, value, updated_at FROM learned_state \
             WHERE substr(name, 1, length($1)) = $1 ORDER BY name",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(state_from_row).collect()
    }

    /// Removes a state entry; true if there was one.
    pub async fn delete_state(&self, name: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM learned_state WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// How many rows each table holds.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM requests) AS requests, \
                    (SELECT COUNT(*) FROM outcomes) AS outcomes, \
                    (SELECT COUNT(*) FROM feedback) AS feedback, \
                    (SELECT COUNT(*) FROM audit_log) AS audit, \
                    (SELECT COUNT(*) FROM learned_state) AS state",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |column| get_i64(&row, column).and_then(|n| from_db(n, column));
        Ok(Counts {
            requests: count("requests")?,
            outcomes: count("outcomes")?,
            feedback: count("feedback")?,
            audit: count("audit")?,
            state: count("state")?,
        })
    }

    /// Deletes everything about requests received before `before_ms` (the request, its
    /// outcome and its feedback), and outcomes and feedback from before then whose request
    /// is missing: the retention policy. Learned state and the audit log are kept.
    pub async fn prune(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut delete = async |sql: &'static str| -> Result<u64, StoreError> {
            let result = sqlx::query(sql).bind(before_ms).execute(&mut *tx).await?;
            Ok(result.rows_affected())
        };
        // Dependents first, while their requests can still be found by time.
        let outcomes = delete(
            "DELETE FROM outcomes WHERE finished_at < $1 \
             OR request_id IN (SELECT id FROM requests WHERE received_at < $1)",
        )
        .await?;
        let feedback = delete(
            "DELETE FROM feedback WHERE created_at < $1 \
             OR decision_id IN (SELECT id FROM requests WHERE received_at < $1)",
        )
        .await?;
        let requests = delete("DELETE FROM requests WHERE received_at < $1").await?;
        let pruned = Pruned { requests, outcomes, feedback };
        tx.commit().await?;
        Ok(pruned)
    }
}

fn state_from_row(row: &sqlx::any::AnyRow) -> Result<StateEntry, StoreError> {
    Ok(StateEntry {
        name: get_string(row, "name")?,
        value: get_string(row, "value")?,
        updated_at_ms: get_i64(row, "updated_at")?,
    })
}

/// Rows per multi-row INSERT on PostgreSQL, largest first. Each size is one statement
/// shape, prepared once per connection and then reused; chunks of arbitrary sizes would
/// prepare a new statement for most batches, which costs more than it saves.
const ROWS_PER_INSERT: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// The same on SQLite, with larger shapes and no byte budget: every statement is a round
/// trip between the writer and sqlx's SQLite worker thread, each side waking the other.
/// Capped at [`BYTES_PER_INSERT`], a batch of 512 records (the gateway's default) took
/// about 40 statements (a request's row is about 1 KB): at 20,000 requests a second, some
/// 5,000 wake-ups a second of the writer's thread and 3,500 of SQLite's. 128 rows of 18
/// columns bind 2,304 values, far under SQLite's limit of 32,766.
const SQLITE_ROWS_PER_INSERT: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// Bytes of bound values per INSERT on PostgreSQL, at most, unless a single row is larger.
/// sqlx 0.9.0 does not set TCP_NODELAY, and a PostgreSQL message of more than about 16 KiB
/// then stalls for ~40 ms on Nagle's algorithm and the server's delayed ACK (sqlx issue
/// #4335; measured here: 44 ms per statement over TCP, none over a Unix socket). Below
/// this, a chunk costs one round trip. SQLite has no socket to stall.
const BYTES_PER_INSERT: usize = 12 * 1024;

/// What one bound value adds to a PostgreSQL Bind message besides its bytes: its length
/// and its format code.
const BIND_OVERHEAD: usize = 6;

/// Splits `rows` greedily into chunks of the backend's statement shapes, the largest that
/// fits its byte budget by `size` ([`ROWS_PER_INSERT`] and [`BYTES_PER_INSERT`] on
/// PostgreSQL, [`SQLITE_ROWS_PER_INSERT`] and no budget on SQLite).
fn chunks<T>(backend: Backend, rows: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let (shapes, budget): (&[usize], Option<usize>) = match backend {
        Backend::Sqlite => (&SQLITE_ROWS_PER_INSERT, None),
        Backend::Postgres => (&ROWS_PER_INSERT, Some(BYTES_PER_INSERT)),
    };
    let mut chunks = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let take = shapes
            .iter()
            .copied()
            .find(|&n| {
                rest.get(..n).is_some_and(|chunk| {
                    budget.is_none_or(|budget| chunk.iter().map(&size).sum::<usize>() <= budget)
                })
            })
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(take);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Room for one upstream try written as JSON (its names and about 60 bytes), so that an
/// outcome's attempts are written without the buffer growing.
const ATTEMPT_JSON_BYTES: usize = 128;

fn text_size(text: &str) -> usize {
    text.len() + BIND_OVERHEAD
}

fn opt_text_size(text: Option<&str>) -> usize {
    text.map_or(BIND_OVERHEAD, text_size)
}

const NUMBER_SIZE: usize = 8 + BIND_OVERHEAD;

fn request_size(r: &&RequestRecord) -> usize {
    [&r.id, &r.requested_model, &r.features_json, &r.chosen_model, &r.reason, &r.ranking_json]
        .into_iter()
        .map(|text| text_size(text))
        .sum::<usize>()
        + [&r.profile, &r.language, &r.domain, &r.complexity]
            .into_iter()
            .map(|text| opt_text_size(text.as_deref()))
            .sum::<usize>()
        + opt_text_size(r.prompt.text())
        + 7 * NUMBER_SIZE
}

fn outcome_size(o: &&OutcomeRecord) -> usize {
    // The attempts are serialised later; each takes its names plus about 60 bytes of JSON.
    let attempts: usize = o
        .attempts
        .iter()
        .map(|a| {
            a.model.len() + a.deployment.len() + a.error_kind.as_ref().map_or(0, String::len) + 60
        })
        .sum();
    text_size(&o.request_id)
        + [&o.model, &o.deployment, &o.error_kind, &o.error_message]
            .into_iter()
            .map(|text| opt_text_size(text.as_deref()))
            .sum::<usize>()
        + attempts
        + BIND_OVERHEAD
        + 9 * NUMBER_SIZE
}

const REQUEST_COLUMNS: &[&str] = &[
    "id",
    "received_at",
    "api",
    "requested_model",
    "profile",
    "stream",
    "prompt_kind",
    "prompt",
    "message_count",
    "features",
    "language",
    "domain",
    "complexity",
    "chosen_model",
    "source",
    "reason",
    "ranking",
    "decision_us",
];

const OUTCOME_COLUMNS: &[&str] = &[
    "request_id",
    "finished_at",
    "status",
    "http_status",
    "model",
    "deployment",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "error_kind",
    "error_message",
    "attempts",
];

/// `INSERT INTO table (columns) VALUES ($1, …), (…), … ON CONFLICT (key) DO NOTHING` for
/// `rows` rows. DO NOTHING makes a retried batch harmless: the first write of a row wins.
/// A multi-row INSERT that leaves rows already stored alone.
///
/// SQLite gets anonymous `?` placeholders: sqlx binds each value by asking SQLite for its
/// placeholder's name, and SQLite finds a numbered name (`$7`) by scanning the statement's
/// list of names, so a 32-row insert with `$n` placeholders costs hundreds of thousands of
/// steps just to bind (a tenth of the gateway's CPU under load, measured). Anonymous
/// placeholders have no name and bind in order. PostgreSQL only understands `$n`.
fn insert_sql(backend: Backend, table: &str, columns: &[&str], rows: usize, key: &str) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut placeholder = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns.len() {
            placeholder += 1;
            sql.push_str(if column == 0 { "" } else { ", " });
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${placeholder}");
                }
            }
        }
        sql.push(')');
    }
    let _ = write!(sql, " ON CONFLICT ({key}) DO NOTHING");
    sql
}

/// A query of either driver, its values bound as they come.
type Insert<DB> = sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>;

/// One multi-row INSERT (see [`insert_sql`]) of `rows` into `table`, each row's values bound
/// in `columns` order by `bind`, on the Any driver or the SQLite driver's own.
async fn insert_rows<DB, R>(
    conn: &mut DB::Connection,
    backend: Backend,
    (table, columns, key): (&str, &[&str], &str),
    rows: &[&R],
    bind: impl Fn(Insert<DB>, &R) -> Result<Insert<DB>, StoreError>,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let sql = insert_sql(backend, table, columns, rows.len(), key);
    let mut query = sqlx::query::<DB>(AssertSqlSafe(sql));
    for row in rows {
        query = bind(query, row)?;
    }
    query.execute(conn).await?;
    Ok(())
}

const REQUESTS: (&str, &[&str], &str) = ("requests", REQUEST_COLUMNS, "id");
const OUTCOMES: (&str, &[&str], &str) = ("outcomes", OUTCOME_COLUMNS, "request_id");

/// A text as the Any driver takes it (it copies it into a buffer of its own anyway), and as
/// PostgreSQL's driver does (it writes it straight into the message it sends).
fn borrowed(text: &str) -> &str {
    text
}

/// A text as the SQLite driver takes it without copying it again: from a `&str` it would
/// make a `String` and then put that in an `Arc`, two allocations where this is one.
fn shared(text: &str) -> Arc<str> {
    Arc::from(text)
}

/// An outcome's cost, refused unless it is a finite, non-negative amount: SQLite turns NaN
/// into NULL and PostgreSQL keeps it; neither is a cost.
fn valid_cost(o: &OutcomeRecord) -> Result<f64, StoreError> {
    if o.cost_usd.is_finite() && o.cost_usd >= 0.0 {
        Ok(o.cost_usd)
    } else {
        Err(StoreError::InvalidRecord(format!(
            "outcome {}: cost {} is not a finite, non-negative amount",
            o.request_id, o.cost_usd
        )))
    }
}

async fn upsert_feedback(conn: &mut AnyConnection, f: &FeedbackRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO feedback (decision_id, created_at, score, rating, comment) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (decision_id) DO UPDATE SET created_at = excluded.created_at, \
         score = excluded.score, rating = excluded.rating, comment = excluded.comment \
         WHERE excluded.created_at >= feedback.created_at",
    )
    .bind(&f.decision_id)
    .bind(f.created_at_ms)
    .bind(f.score.get())
    .bind(f.rating.map(|rating| i64::from(rating.get())))
    .bind(&f.comment)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_audit(conn: &mut AnyConnection, a: &AuditRecord) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO audit_log (created_at, actor, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(a.created_at_ms)
    .bind(&a.actor)
    .bind(&a.action)
    .bind(&a.target)
    .bind(&a.detail)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get::<i64, _>("id")?)
}

#[cfg(test)]
mod tests {
    use super::{BYTES_PER_INSERT, chunks, insert_sql};
    use crate::connect::Backend;

    #[test]
    fn batches_split_into_few_statement_shapes() {
        let sizes = |rows: &[usize]| {
            let chunks = chunks(Backend::Postgres, rows, |&n| n);
            assert_eq!(chunks.concat(), rows);
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        };
        assert_eq!(sizes(&[100; 77]), [32, 32, 8, 4, 1]);
        assert!(sizes(&[]).is_empty());
        assert_eq!(sizes(&[BYTES_PER_INSERT / 4; 9]), [4, 4, 1]);
        // A row over the budget goes alone.
        assert_eq!(sizes(&[2_000, 2_000, 50_000, 10, 10]), [2, 1, 2]);
    }

    #[test]
    fn sqlite_batches_take_larger_statements_whatever_their_bytes() {
        let rows = [BYTES_PER_INSERT; 250];
        let chunks = chunks(Backend::Sqlite, &rows, |&n| n);
        assert_eq!(chunks.concat(), rows);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [128, 64, 32, 16, 8, 2]);
    }

    #[test]
    fn multi_row_inserts_number_every_value() {
        assert_eq!(
            insert_sql(Backend::Postgres, "t", &["a", "b"], 2, "a"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            insert_sql(Backend::Postgres, "t", &["a"], 1, "a"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING"
        );
    }

    #[test]
    fn sqlite_inserts_bind_in_order_without_names() {
        assert_eq!(
            insert_sql(Backend::Sqlite, "t", &["a", "b"], 2, "a"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING"
        );
    }
}
