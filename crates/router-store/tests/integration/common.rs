//! Test databases and fixtures.
//!
//! Every test runs against a real database: SQLite in memory, SQLite in a file in a fresh
//! temporary directory, and PostgreSQL when `LLM_ROUTER_TEST_POSTGRES` holds a URL (each
//! test gets its own schema, dropped afterwards, so tests can run in parallel).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use router_store::{
    Api, Attempt, DecisionSource, FeedbackRecord, OutcomeRecord, OutcomeStatus, Record,
    RequestRecord, Score, Store, StoreOptions, StoredPrompt,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tempfile::TempDir;

pub const POSTGRES_ENV: &str = "LLM_ROUTER_TEST_POSTGRES";

/// A migrated store, and whatever must live as long as it.
pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with, for opening a second store on the same database.
    pub url: String,
    _dir: Option<TempDir>,
    schema: Option<PgSchema>,
}

impl TestDb {
    pub async fn sqlite_memory() -> TestDb {
        TestDb::open("sqlite::memory:".to_owned(), None, None, &StoreOptions::default()).await
    }

    pub async fn sqlite_file() -> TestDb {
        TestDb::sqlite_file_with(&StoreOptions::default()).await
    }

    pub async fn sqlite_file_with(options: &StoreOptions) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("router.db").display());
        TestDb::open(url, Some(dir), None, options).await
    }

    /// A store in a fresh schema of the test PostgreSQL, or `None` (with a note) when no
    /// PostgreSQL is configured.
    pub async fn postgres() -> Option<TestDb> {
        let schema = PgSchema::from_env().await?;
        let url = schema.url();
        Some(TestDb::open(url, None, Some(schema), &StoreOptions::default()).await)
    }

    async fn open(
        url: String,
        dir: Option<TempDir>,
        schema: Option<PgSchema>,
        options: &StoreOptions,
    ) -> TestDb {
        let store = Store::connect_with(&url, options).await.unwrap();
        store.migrate().await.unwrap();
        TestDb { store, url, _dir: dir, schema }
    }

    /// Closes the store and drops the test schema, if any.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = self.schema {
            schema.drop_now().await;
        }
    }
}

/// A uniquely named PostgreSQL schema that a test's tables live in.
pub struct PgSchema {
    base_url: String,
    name: String,
    dropped: bool,
}

impl PgSchema {
    /// A fresh schema in the test PostgreSQL, or `None` (with a note) when none is configured.
    pub async fn from_env() -> Option<PgSchema> {
        let Ok(base_url) = std::env::var(POSTGRES_ENV) else {
            eprintln!("note: {POSTGRES_ENV} is not set; skipping the PostgreSQL variant");
            return None;
        };
        Some(PgSchema::create(&base_url).await)
    }

    pub async fn create(base_url: &str) -> PgSchema {
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(base_url).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        PgSchema { base_url: base_url.to_owned(), name, dropped: false }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL with the schema as the search path (and as the application name, so a
    /// test can find its own connections in `pg_stat_activity`).
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{name}&application_name={name}",
            self.base_url,
            name = self.name
        )
    }

    pub async fn drop_now(mut self) {
        drop_schema(&self.base_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for PgSchema {
    /// A test that panicked never reached `drop_now`; clean up on a thread of its own, since
    /// the test's runtime cannot be blocked on from here.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(drop_schema(&base_url, &name));
            }
        })
        .join();
    }
}

async fn drop_schema(base_url: &str, name: &str) {
    if let Ok(mut conn) = AnyConnection::connect(base_url).await {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

/// Runs each named `async fn(&TestDb)` against every backend, as one test per backend:
/// `name::sqlite_memory`, `name::sqlite_file`, `name::postgres`.
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use crate::common::TestDb;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_memory() {
                    let db = TestDb::sqlite_memory().await;
                    super::$name(&db).await;
                    db.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_file() {
                    let db = TestDb::sqlite_file().await;
                    super::$name(&db).await;
                    db.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            }
        )+
    };
}
pub(crate) use on_every_backend;

/// A request with every field filled in, routed by the policy.
pub fn request(id: &str, received_at_ms: i64, model: &str) -> RequestRecord {
    RequestRecord {
        id: id.to_owned(),
        received_at_ms,
        api: Api::OpenAi,
        requested_model: "auto".to_owned(),
        profile: Some("balanced".to_owned()),
        stream: false,
        prompt: StoredPrompt::None,
        message_count: 1,
        features_json: r#"{"prompt_tokens":12}"#.to_owned(),
        language: Some("en".to_owned()),
        domain: Some("code".to_owned()),
        complexity: Some("low".to_owned()),
        chosen_model: model.to_owned(),
        source: DecisionSource::Policy,
        reason: "best expected quality per dollar".to_owned(),
        ranking_json: format!(r#"[{{"model":"{model}"}}]"#),
        decision_us: 42,
    }
}

/// A successful outcome answered by `model`.
pub fn outcome(request_id: &str, model: &str, latency_ms: u64) -> OutcomeRecord {
    OutcomeRecord {
        request_id: request_id.to_owned(),
        finished_at_ms: 0,
        status: OutcomeStatus::Ok,
        http_status: 200,
        model: Some(model.to_owned()),
        deployment: Some(format!("{model}-east")),
        latency_ms,
        ttft_ms: None,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        error_kind: None,
        error_message: None,
        attempts: vec![Attempt {
            model: model.to_owned(),
            deployment: format!("{model}-east"),
            error_kind: None,
            duration_ms: latency_ms,
        }],
    }
}

pub fn feedback(decision_id: &str, score: f64, created_at_ms: i64) -> FeedbackRecord {
    FeedbackRecord {
        decision_id: decision_id.to_owned(),
        created_at_ms,
        score: Score::new(score).unwrap(),
        rating: None,
        comment: None,
    }
}

pub fn ids(views: &[router_store::DecisionView]) -> Vec<&str> {
    views.iter().map(|view| view.request.id.as_str()).collect()
}

/// The shared data set behind the stats, timeseries and filter tests. The expected numbers
/// in those tests are worked out by hand from this table:
///
/// | id | received | chosen | answered | domain/lang/band | status  | latency | ttft | in/out  | cost   | score |
/// |----|----------|--------|----------|------------------|---------|---------|------|---------|--------|-------|
/// | r0 | 500      | alpha  | alpha    | code/en/low      | ok      | 5000    |      | 1/1     | 0.1    |       |
/// | r1 | 1000     | alpha  | alpha    | code/en/low      | ok      | 100     | 20   | 10/20   | 0.001  | 1.0   |
/// | r2 | 1050     | alpha  | alpha    | code/en/low      | ok      | 300     | 40   | 30/40   | 0.003  | 0.5   |
/// | r3 | 1099     | alpha  | alpha    | code/en/low      | error   | 50      |      | 5/0     | 0      |       |
/// | r4 | 1100     | alpha  | alpha    | code/en/low      | ok      | 200     |      | 20/30   | 0.002  |       |
/// | r5 | 1250     | alpha  | alpha    | code/en/high     | ok      | 1000    |      | 100/200 | 0.05   |       |
/// | r6 | 1260     | alpha  | beta     | math/zh/medium   | ok      | 400     |      | 50/60   | 0.01   |       |
/// | r7 | 1299     | beta   | beta     | math/zh/medium   | cancel  | 80      |      | 10/5    | 0.0005 | 0.0   |
/// | r8 | 1300     | beta   | —        | math/zh/medium   | pending |         |      |         |        |       |
/// | r9 | 1399     | gamma  | none     | —/—/—            | error   | 30      |      | 0/0     | 0      |       |
pub fn dataset() -> Vec<Record> {
    use DecisionSource::{Explicit, Fallback, Judge, Policy};
    use OutcomeStatus::{Cancelled, Error, Ok};
    const CODE_EN_LOW: Context = Some(("code", "en", "low"));
    const CODE_EN_HIGH: Context = Some(("code", "en", "high"));
    const MATH_ZH_MEDIUM: Context = Some(("math", "zh", "medium"));
    let alpha = Some("alpha");
    let beta = Some("beta");

    [
        Row::new("r0", 500, "alpha", CODE_EN_LOW, Policy).ended(Ok, alpha, 5000, None, (1, 1), 0.1),
        Row::new("r1", 1000, "alpha", CODE_EN_LOW, Policy)
            .ended(Ok, alpha, 100, Some(20), (10, 20), 0.001)
            .scored(1.0),
        Row::new("r2", 1050, "alpha", CODE_EN_LOW, Policy)
            .ended(Ok, alpha, 300, Some(40), (30, 40), 0.003)
            .scored(0.5),
        Row::new("r3", 1099, "alpha", CODE_EN_LOW, Policy).ended(
            Error,
            alpha,
            50,
            None,
            (5, 0),
            0.0,
        ),
        Row::new("r4", 1100, "alpha", CODE_EN_LOW, Policy).ended(
            Ok,
            alpha,
            200,
            None,
            (20, 30),
            0.002,
        ),
        Row::new("r5", 1250, "alpha", CODE_EN_HIGH, Judge).ended(
            Ok,
            alpha,
            1000,
            None,
            (100, 200),
            0.05,
        ),
        Row::new("r6", 1260, "alpha", MATH_ZH_MEDIUM, Fallback).ended(
            Ok,
            beta,
            400,
            None,
            (50, 60),
            0.01,
        ),
        Row::new("r7", 1299, "beta", MATH_ZH_MEDIUM, Explicit)
            .ended(Cancelled, beta, 80, None, (10, 5), 0.0005)
            .scored(0.0),
        Row::new("r8", 1300, "beta", MATH_ZH_MEDIUM, Judge),
        Row::new("r9", 1399, "gamma", None, Policy).ended(Error, None, 30, None, (0, 0), 0.0),
    ]
    .into_iter()
    .flat_map(|row| row.records)
    .collect()
}

/// Domain, language and complexity band.
type Context = Option<(&'static str, &'static str, &'static str)>;

/// One request of the data set, then its outcome and feedback.
struct Row {
    id: &'static str,
    at: i64,
    records: Vec<Record>,
}

impl Row {
    fn new(
        id: &'static str,
        at: i64,
        chosen: &str,
        context: Context,
        source: DecisionSource,
    ) -> Row {
        let mut request = request(id, at, chosen);
        request.source = source;
        request.domain = context.map(|c| c.0.to_owned());
        request.language = context.map(|c| c.1.to_owned());
        request.complexity = context.map(|c| c.2.to_owned());
        Row { id, at, records: vec![request.into()] }
    }

    fn ended(
        mut self,
        status: OutcomeStatus,
        answered_by: Option<&str>,
        latency_ms: u64,
        ttft_ms: Option<u64>,
        (input_tokens, output_tokens): (u64, u64),
        cost_usd: f64,
    ) -> Row {
        let mut outcome = outcome(self.id, answered_by.unwrap_or("none"), latency_ms);
        outcome.finished_at_ms = self.at + latency_ms as i64;
        outcome.status = status;
        outcome.model = answered_by.map(str::to_owned);
        outcome.deployment = answered_by.map(|model| format!("{model}-east"));
        outcome.ttft_ms = ttft_ms;
        outcome.input_tokens = input_tokens;
        outcome.output_tokens = output_tokens;
        outcome.cost_usd = cost_usd;
        match status {
            OutcomeStatus::Ok => {}
            OutcomeStatus::Error => {
                outcome.http_status = 502;
                outcome.error_kind = Some("upstream".to_owned());
            }
            OutcomeStatus::Cancelled => outcome.http_status = 499,
        }
        self.records.push(outcome.into());
        self
    }

    fn scored(mut self, score: f64) -> Row {
        self.records.push(feedback(self.id, score, self.at + 10_000).into());
        self
    }
}
