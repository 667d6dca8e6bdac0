//! Persistence for the router, behind one interface over SQLite and PostgreSQL.
//!
//! `router-store` owns everything the router keeps between requests and across restarts:
//! the decision made for each request, how the request ended, the feedback users gave, the
//! learned state the policy serialises, and the audit log of operators' changes. It owns the
//! schema (embedded [migrations](Store::migrate), one set per backend), the
//! [batching writer](spawn_writer) the request path writes through without waiting on the
//! database, and the aggregate queries behind the stats API and the dashboard.
//!
//! One code path serves both backends: sqlx's `Any` driver with runtime queries, `$n`
//! placeholders, times as BIGINT epoch milliseconds and JSON as TEXT. SQLite (a file, or
//! memory for tests) is the default; PostgreSQL lets several gateway replicas share one
//! database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), router_store::StoreError> {
//! use router_store::{Store, WriterOptions, spawn_writer};
//!
//! let store = Store::connect("sqlite:data/router.db").await?;
//! store.migrate().await?;
//! let (writer, task) = spawn_writer(store.clone(), WriterOptions::default());
//! // … hand `writer` to the request path; on shutdown:
//! let report = task.shutdown().await;
//! # let _ = (writer, report);
//! # Ok(())
//! # }
//! ```

mod connect;
mod error;
mod json;
mod migrate;
mod read;
mod record;
mod sql;
mod stats;
mod store;
mod writer;

pub use connect::{Backend, StoreOptions};
pub use error::StoreError;
pub use read::{Cursor, DecisionFilter, MAX_LIMIT, StatusFilter};
pub use record::{
    Api, Attempt, AuditEntry, AuditRecord, CapturedPrompt, Counts, DecisionSource, DecisionView,
    FeedbackRecord, FeedbackView, OutcomeRecord, OutcomeStatus, Rating, Record, RequestContext,
    RequestRecord, RoutedRequest, Score, StateEntry, StoredPrompt,
};
pub use stats::{MAX_BUCKETS, StatsQuery, StatsRow, TimeBucket};
pub use store::{Pruned, Store};
pub use writer::{
    Closed, RetryPolicy, TrySendError, Writer, WriterMetrics, WriterOptions, WriterReport,
    WriterTask, spawn_writer,
};
