//! The [`Store`]: the pool, the schema, and every write.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use sqlx::{Any, AnyPool, AssertSqlSafe, Postgres, Row, Sqlite};

use crate::connect::{Backend, Bulk, StoreOptions, Target};
use crate::error::StoreError;
use crate::json;
use crate::migrate::migrator;
use crate::record::{
    AuditRecord, Counts, FeedbackRecord, OutcomeRecord, Record, RequestRecord, StateEntry,
};
use crate::sql::{from_db, get_i64, get_string, now_ms, to_db};

/// Binds a row's values to `$query`, in the order of [`COLUMNS`]: the request's part and
/// the outcome's, NULLs for a part the row lacks. The same for the Any driver and the backend
/// drivers' own, whose query types differ, and whose texts go in as `$text` makes them
/// ([`borrowed`] for the Any and PostgreSQL drivers, [`shared`] for SQLite's).
macro_rules! bind_row {
    ($query:expr, $row:expr, $text:expr) => {{
        let row: &RequestRow<'_> = $row;
        let (r, o) = (row.request, row.outcome);
        $query
            .bind($text(row.id))
            .bind(r.map(|r| r.received_at_ms))
            .bind(r.map(|r| $text(r.api.as_str())))
            .bind(r.map(|r| $text(r.requested_model.as_str())))
            .bind(r.and_then(|r| r.profile.as_deref().map($text)))
            .bind(r.map(|r| r.stream))
            .bind(r.map(|r| $text(r.prompt.kind())))
            .bind(r.and_then(|r| r.prompt.text().map($text)))
            .bind(r.map(|r| i64::from(r.message_count)))
            .bind(r.map(|r| $text(r.features_json.as_str())))
            .bind(r.and_then(|r| r.language.as_deref().map($text)))
            .bind(r.and_then(|r| r.domain.as_deref().map($text)))
            .bind(r.and_then(|r| r.complexity.as_deref().map($text)))
            .bind(r.map(|r| $text(r.chosen_model.as_str())))
            .bind(r.map(|r| $text(r.source.as_str())))
            .bind(r.map(|r| $text(r.reason.as_str())))
            .bind(r.map(|r| $text(r.ranking_json.as_str())))
            .bind(r.map(|r| to_db(r.decision_us, "decision_us")).transpose()?)
            .bind(o.map(|o| o.finished_at_ms))
            .bind(o.map(|o| $text(o.status.as_str())))
            .bind(o.map(|o| i64::from(o.http_status)))
            .bind(o.and_then(|o| o.model.as_deref().map($text)))
            .bind(o.and_then(|o| o.deployment.as_deref().map($text)))
            .bind(o.map(|o| to_db(o.latency_ms, "latency_ms")).transpose()?)
            .bind(o.and_then(|o| o.ttft_ms).map(|ttft| to_db(ttft, "ttft_ms")).transpose()?)
            .bind(o.map(|o| to_db(o.input_tokens, "input_tokens")).transpose()?)
            .bind(o.map(|o| to_db(o.output_tokens, "output_tokens")).transpose()?)
            .bind(o.map(valid_cost).transpose()?)
            .bind(o.and_then(|o| o.error_kind.as_deref().map($text)))
            .bind(o.and_then(|o| o.error_message.as_deref().map($text)))
            .bind(
                o.map(|o| json::text_of(&o.attempts, ATTEMPT_JSON_BYTES * o.attempts.len().max(1)))
                    .transpose()?,
            )
    }};
}

/// Writes a batch's rows, several a statement, on a connection of driver `$db`; `$text` as
/// in [`bind_row`].
macro_rules! insert_all {
    ($db:ty, $conn:expr, $backend:expr, $rows:expr, $text:expr) => {
        for chunk in chunks($backend, $rows, row_size) {
            insert_rows::<$db>($conn, $backend, chunk, |query, row| {
                Ok(bind_row!(query, row, $text))
            })
            .await?;
        }
    };
}

/// Writes a batch in one transaction on a pool of driver `$db`: its rows (see
/// [`insert_all`]), then its feedback and audit entries.
macro_rules! write_all {
    ($db:ty, $pool:expr, $backend:expr, $rows:expr, $feedback:expr, $audits:expr, $text:expr) => {{
        let mut tx = $pool.begin().await?;
        insert_all!($db, &mut tx, $backend, $rows, $text);
        for f in $feedback {
            feedback_upsert!($db, f, $text).execute(&mut *tx).await?;
        }
        for a in $audits {
            audit_insert!($db, a, $text).execute(&mut *tx).await?;
        }
        Ok(tx.commit().await?)
    }};
}

/// The upsert of one piece of feedback, for driver `$db`: a later piece for the same
/// decision replaces it, an earlier one is ignored.
macro_rules! feedback_upsert {
    ($db:ty, $f:expr, $text:expr) => {{
        let f: &FeedbackRecord = $f;
        sqlx::query::<$db>(
            "INSERT INTO feedback (decision_id, created_at, score, rating, comment) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (decision_id) DO UPDATE SET created_at = excluded.created_at, \
             score = excluded.score, rating = excluded.rating, comment = excluded.comment \
             WHERE excluded.created_at >= feedback.created_at",
        )
        .bind($text(f.decision_id.as_str()))
        .bind(f.created_at_ms)
        .bind(f.score.get())
        .bind(f.rating.map(|rating| i64::from(rating.get())))
        .bind(f.comment.as_deref().map($text))
    }};
}

/// The insert of one audit entry, for driver `$db`, returning its id.
macro_rules! audit_insert {
    ($db:ty, $a:expr, $text:expr) => {{
        let a: &AuditRecord = $a;
        sqlx::query::<$db>(
            "INSERT INTO audit_log (created_at, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(a.created_at_ms)
        .bind($text(a.actor.as_str()))
        .bind($text(a.action.as_str()))
        .bind(a.target.as_deref().map($text))
        .bind(a.detail.as_deref().map($text))
    }};
}

/// The database behind the router: SQLite or PostgreSQL, through the same methods.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// A pool of the backend's own driver that batches go through (not for an in-memory
    /// SQLite database). The Any driver copies every text value twice on its way (into its
    /// own argument buffer, then into the backend driver's), four allocations a value;
    /// SQLite's driver takes an `Arc<str>` as it is, and PostgreSQL's writes a borrowed
    /// `&str` straight into its buffer.
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
    /// A request and its outcome are one row: written together when both are in the batch,
    /// the outcome's part added to the stored row when it comes later, and the request's
    /// part added when an outcome came first. Requests and outcomes are written before
    /// feedback and audit entries, whatever their order in the slice. Writing is idempotent,
    /// so a batch may be retried after an error that left it unclear whether the commit
    /// happened: a request or outcome that is already stored is left as it is (the first
    /// write wins), feedback replaces stored feedback unless it is older, and only audit
    /// records would be repeated.
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
        let rows = RequestRow::pair(&requests, &outcomes);
        // The backend driver's own connection when there is one: it takes texts with fewer
        // copies than the Any driver (see `bulk`), and the Any driver sends a NULL
        // DOUBLE PRECISION to PostgreSQL as a REAL (sqlx 0.9.0 swaps the two), which breaks
        // the prepared statement for the next row that has a cost.
        match &self.bulk {
            Some(Bulk::Sqlite(pool)) => {
                write_all!(Sqlite, pool, Backend::Sqlite, &rows, feedback, audits, shared)
            }
            Some(Bulk::Postgres(pool)) => {
                write_all!(Postgres, pool, Backend::Postgres, &rows, feedback, audits, borrowed)
            }
            None => write_all!(Any, &self.pool, self.backend, &rows, feedback, audits, borrowed),
        }
    }

    /// Stores feedback right away (rather than through the writer), replacing earlier
    /// feedback for the same decision. Feedback older than the stored one is ignored.
    pub async fn upsert_feedback(&self, feedback: &FeedbackRecord) -> Result<(), StoreError> {
        feedback_upsert!(Any, feedback, borrowed).execute(&self.pool).await?;
        Ok(())
    }

    /// Appends to the audit log right away and returns the entry's id.
    pub async fn audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let row = audit_insert!(Any, record, borrowed).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("id")?)
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

    /// How many requests, outcomes, pieces of feedback, audit entries and state entries are
    /// stored.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(received_at) FROM requests) AS requests, \
                    (SELECT COUNT(finished_at) FROM requests) AS outcomes, \
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
        // Feedback first, while its requests can still be found by time.
        let feedback = delete(
            "DELETE FROM feedback WHERE created_at < $1 \
             OR decision_id IN (SELECT id FROM requests WHERE received_at < $1)",
        )
        .await?;
        // A row is a request with its outcome, if it has one yet.
        let outcomes_of_requests =
            delete("DELETE FROM requests WHERE received_at < $1 AND finished_at IS NOT NULL")
                .await?;
        let pending_requests = delete("DELETE FROM requests WHERE received_at < $1").await?;
        let lone_outcomes =
            delete("DELETE FROM requests WHERE received_at IS NULL AND finished_at < $1").await?;
        let requests = outcomes_of_requests + pending_requests;
        let outcomes = outcomes_of_requests + lone_outcomes;
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
/// 5,000 wake-ups a second of the writer's thread and 3,500 of SQLite's. 128 rows of 31
/// columns bind 3,968 values, far under SQLite's limit of 32,766.
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

fn row_size(row: &RequestRow<'_>) -> usize {
    // A part the row lacks is bound as NULLs, a length and a format code each.
    let request = row.request.map_or(REQUEST_PART * BIND_OVERHEAD, |r| {
        [&r.requested_model, &r.features_json, &r.chosen_model, &r.reason, &r.ranking_json]
            .into_iter()
            .map(|text| text_size(text))
            .sum::<usize>()
            + [&r.profile, &r.language, &r.domain, &r.complexity]
                .into_iter()
                .map(|text| opt_text_size(text.as_deref()))
                .sum::<usize>()
            + opt_text_size(r.prompt.text())
            + 7 * NUMBER_SIZE
    });
    let outcome = row.outcome.map_or((COLUMNS.len() - 1 - REQUEST_PART) * BIND_OVERHEAD, |o| {
        // The attempts are serialised later; each takes its names plus about 60 bytes of JSON.
        let attempts: usize = o
            .attempts
            .iter()
            .map(|a| {
                a.model.len()
                    + a.deployment.len()
                    + a.error_kind.as_ref().map_or(0, String::len)
                    + 60
            })
            .sum();
        [&o.model, &o.deployment, &o.error_kind, &o.error_message]
            .into_iter()
            .map(|text| opt_text_size(text.as_deref()))
            .sum::<usize>()
            + attempts
            + BIND_OVERHEAD
            + 9 * NUMBER_SIZE
    });
    text_size(row.id) + request + outcome
}

/// One row of `requests`: a request's part, its outcome's part, or both.
#[derive(Debug, Clone, Copy)]
struct RequestRow<'a> {
    id: &'a str,
    request: Option<&'a RequestRecord>,
    outcome: Option<&'a OutcomeRecord>,
}

impl<'a> RequestRow<'a> {
    /// The rows of a batch: each request with its outcome when the batch holds both (almost
    /// always: the writer gathers records for up to its delay, and most answers take less),
    /// each alone otherwise. A second request or outcome for the same id is left out, as
    /// the stored row would leave it out: the first write wins. Ids come out unique, which
    /// PostgreSQL requires of the rows of one upsert.
    fn pair(requests: &[&'a RequestRecord], outcomes: &[&'a OutcomeRecord]) -> Vec<RequestRow<'a>> {
        let mut rows: Vec<RequestRow<'a>> = Vec::with_capacity(requests.len().max(outcomes.len()));
        let mut by_id: HashMap<&'a str, usize> = HashMap::with_capacity(rows.capacity());
        for &request in requests {
            if let Entry::Vacant(slot) = by_id.entry(request.id.as_str()) {
                slot.insert(rows.len());
                rows.push(RequestRow { id: &request.id, request: Some(request), outcome: None });
            }
        }
        for &outcome in outcomes {
            match by_id.entry(outcome.request_id.as_str()) {
                Entry::Occupied(slot) => {
                    let row = &mut rows[*slot.get()];
                    row.outcome = row.outcome.or(Some(outcome));
                }
                Entry::Vacant(slot) => {
                    slot.insert(rows.len());
                    rows.push(RequestRow {
                        id: &outcome.request_id,
                        request: None,
                        outcome: Some(outcome),
                    });
                }
            }
        }
        rows
    }
}

/// The columns of `requests`, in the order [`bind_row`] binds them: the id, then the
/// request's part ([`REQUEST_PART`] columns), then the outcome's.
const COLUMNS: &[&str] = &[
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

/// How many of [`COLUMNS`] after the id are the request's part.
const REQUEST_PART: usize = 17;

/// `INSERT INTO requests (columns) VALUES ($1, …), (…), … ON CONFLICT (id) DO UPDATE …` for
/// `rows` rows. On a row already stored, each part is filled in only if the stored row lacks
/// it: an outcome joins its request's row, a request joins the row its outcome made, and a
/// part written again (a retried batch) changes nothing — the first write of a part wins.
///
/// SQLite gets anonymous `?` placeholders: sqlx binds each value by asking SQLite for its
/// placeholder's name, and SQLite finds a numbered name (`$7`) by scanning the statement's
/// list of names, so a 32-row insert with `$n` placeholders costs hundreds of thousands of
/// steps just to bind (a tenth of the gateway's CPU under load, measured). Anonymous
/// placeholders have no name and bind in order. PostgreSQL only understands `$n`.
fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO requests ({}) VALUES ", COLUMNS.join(", "));
    let mut placeholder = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS.len() {
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
    sql.push_str(" ON CONFLICT (id) DO UPDATE SET ");
    for (i, column) in COLUMNS.iter().enumerate().skip(1) {
        // A part is present exactly when its time is: both are NOT NULL in every record.
        let part = if i <= REQUEST_PART { "received_at" } else { "finished_at" };
        let _ = write!(
            sql,
            "{}{column} = CASE WHEN requests.{part} IS NULL THEN excluded.{column} \
             ELSE requests.{column} END",
            if i == 1 { "" } else { ", " }
        );
    }
    sql
}

/// [`insert_sql`] for each statement shape of the backend ([`chunks`] makes no other), built
/// once: the text runs to several kilobytes, and sqlx looks its prepared statement up by it.
fn shape_sql(backend: Backend, rows: usize) -> Option<&'static str> {
    static SQLITE: OnceLock<Vec<String>> = OnceLock::new();
    static POSTGRES: OnceLock<Vec<String>> = OnceLock::new();
    let (shapes, texts): (&[usize], _) = match backend {
        Backend::Sqlite => (&SQLITE_ROWS_PER_INSERT, &SQLITE),
        Backend::Postgres => (&ROWS_PER_INSERT, &POSTGRES),
    };
    let texts = texts.get_or_init(|| shapes.iter().map(|&n| insert_sql(backend, n)).collect());
    let shape = shapes.iter().position(|&n| n == rows)?;
    texts.get(shape).map(String::as_str)
}

/// A query of either driver, its values bound as they come.
type Insert<DB> = sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>;

/// One multi-row upsert (see [`insert_sql`]) of `rows`, each row's values bound in
/// [`COLUMNS`] order by `bind`, on the Any driver or a backend driver's own.
async fn insert_rows<DB>(
    conn: &mut DB::Connection,
    backend: Backend,
    rows: &[RequestRow<'_>],
    bind: impl Fn(Insert<DB>, &RequestRow<'_>) -> Result<Insert<DB>, StoreError>,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let mut query = match shape_sql(backend, rows.len()) {
        Some(sql) => sqlx::query::<DB>(sql),
        None => sqlx::query::<DB>(AssertSqlSafe(insert_sql(backend, rows.len()))),
    };
    for row in rows {
        query = bind(query, row)?;
    }
    query.execute(conn).await?;
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::{BYTES_PER_INSERT, COLUMNS, chunks, insert_sql, shape_sql};
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
        let sql = insert_sql(Backend::Postgres, 2);
        let values = sql.split(" VALUES ").nth(1).unwrap().split(" ON CONFLICT").next().unwrap();
        let columns = COLUMNS.len();
        let first: Vec<String> = (1..=columns).map(|n| format!("${n}")).collect();
        let second: Vec<String> = (columns + 1..=2 * columns).map(|n| format!("${n}")).collect();
        assert_eq!(values, format!("({}), ({})", first.join(", "), second.join(", ")));
    }

    #[test]
    fn sqlite_inserts_bind_in_order_without_names() {
        let sql = insert_sql(Backend::Sqlite, 1);
        let values = sql.split(" VALUES ").nth(1).unwrap().split(" ON CONFLICT").next().unwrap();
        assert_eq!(values, format!("({})", vec!["?"; COLUMNS.len()].join(", ")));
    }

    #[test]
    fn every_shape_has_its_statement_made_once() {
        for (backend, rows) in
            [(Backend::Sqlite, 128), (Backend::Sqlite, 1), (Backend::Postgres, 32)]
        {
            let sql = shape_sql(backend, rows).unwrap();
            assert_eq!(sql, insert_sql(backend, rows));
            assert!(std::ptr::eq(sql, shape_sql(backend, rows).unwrap()));
        }
        assert_eq!(shape_sql(Backend::Postgres, 128), None, "not a PostgreSQL shape");
    }

    /// Each part is filled in from the new row only where the stored row lacks it.
    #[test]
    fn a_conflict_fills_in_only_the_missing_part() {
        let sql = insert_sql(Backend::Sqlite, 1);
        let update = sql.split(" DO UPDATE SET ").nth(1).unwrap();
        assert!(update.starts_with(
            "received_at = CASE WHEN requests.received_at IS NULL THEN excluded.received_at \
             ELSE requests.received_at END, "
        ));
        assert!(update.contains(
            "decision_us = CASE WHEN requests.received_at IS NULL THEN excluded.decision_us"
        ));
        assert!(update.contains(
            "finished_at = CASE WHEN requests.finished_at IS NULL THEN excluded.finished_at"
        ));
        assert!(update.ends_with(
            "attempts = CASE WHEN requests.finished_at IS NULL THEN excluded.attempts \
             ELSE requests.attempts END"
        ));
        assert_eq!(update.matches(" = CASE ").count(), COLUMNS.len() - 1);
        assert!(!update.contains("id = "), "the id is never rewritten");
    }
}
