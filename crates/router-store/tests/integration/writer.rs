//! The batching writer: draining, backpressure, retries, and what it gives up.

use std::time::Duration;

use router_store::{
    Record, RetryPolicy, StoreOptions, TrySendError, WriterOptions, WriterReport, spawn_writer,
};
use sqlx::{AnyConnection, Connection};

use crate::common::{POSTGRES_ENV, TestDb, feedback, on_every_backend, outcome, request};

on_every_backend!(
    drains_everything_from_concurrent_senders,
    refuses_records_after_shutdown,
    flushes_without_waiting_for_a_full_batch,
    a_full_batch_does_not_wait_out_the_delay,
    shutdown_does_not_wait_out_the_delay,
    drops_only_the_record_that_cannot_be_written,
);

fn options(capacity: usize, max_batch: usize, max_delay_ms: u64) -> WriterOptions {
    WriterOptions {
        capacity,
        max_batch,
        max_delay: Duration::from_millis(max_delay_ms),
        retry: RetryPolicy {
            max_retries: 50,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
        },
    }
}

/// 8 tasks send 10 000 records in all through a queue much smaller than that, outcomes
/// before their requests for half of them; shutdown must write every one.
async fn drains_everything_from_concurrent_senders(db: &TestDb) {
    const TASKS: usize = 8;
    const PAIRS_PER_TASK: usize = 625;
    let (writer, task) = spawn_writer(db.store.clone(), options(256, 200, 5));
    let senders: Vec<_> = (0..TASKS)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0..PAIRS_PER_TASK {
                    let id = format!("t{t}-{i}");
                    let request = Record::from(request(&id, i as i64, "alpha"));
                    let outcome = Record::from(outcome(&id, "alpha", 10));
                    let (first, second) =
                        if i % 2 == 0 { (request, outcome) } else { (outcome, request) };
                    writer.send(first).await.unwrap();
                    writer.send(second).await.unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    assert_eq!(writer.metrics().accepted, 10_000);

    let report = task.shutdown().await;
    assert_eq!(report.accepted, 10_000);
    assert_eq!(report.written, 10_000);
    assert_eq!((report.dropped, report.failed_batches), (0, 0));
    assert!(report.batches >= 50, "batches hold at most 200 records: {report:?}");
    assert_eq!(writer.metrics().queue_depth, 0);

    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (5_000, 5_000));
}

async fn refuses_records_after_shutdown(db: &TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), WriterOptions::default());
    writer.send(request("before", 1, "alpha")).await.unwrap();
    let report = task.shutdown().await;
    assert_eq!(report.written, 1);

    let refused = writer.send(request("after", 2, "alpha")).await.unwrap_err();
    assert!(matches!(refused.0, Record::Request(ref r) if r.id == "after"));
    match writer.try_send(feedback("before", 1.0, 3)) {
        Err(TrySendError::Closed(Record::Feedback(f))) => assert_eq!(f.decision_id, "before"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(db.store.counts().await.unwrap().requests, 1);
}

/// A lone record is written once `max_delay` has passed, without a shutdown to force it.
async fn flushes_without_waiting_for_a_full_batch(db: &TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), options(100, 100, 20));
    writer.try_send(request("lonely", 1, "alpha")).unwrap();
    let written = wait_until(|| async { writer.metrics().written == 1 }).await;
    assert!(written, "the record was never written");
    assert_eq!(db.store.counts().await.unwrap().requests, 1);
    let metrics = writer.metrics();
    assert_eq!((metrics.batches, metrics.queue_depth), (1, 0));
    task.shutdown().await;
}

/// The writer sleeps through its gathering window rather than waking for every record, but
/// looks at the queue on the way: a batch that fills up is written well before the delay.
async fn a_full_batch_does_not_wait_out_the_delay(db: &TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), options(100, 4, 4_000));
    let started = std::time::Instant::now();
    for i in 0..4 {
        writer.try_send(request(&format!("full-{i}"), i, "alpha")).unwrap();
    }
    let written = wait_until(|| async { writer.metrics().written == 4 }).await;
    assert!(written, "the full batch was not written");
    assert!(started.elapsed() < Duration::from_millis(2_500), "{:?}", started.elapsed());
    task.shutdown().await;
}

/// Records still gathering when shutdown begins are written at once, not after the delay.
async fn shutdown_does_not_wait_out_the_delay(db: &TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), options(1_000, 10, 60_000));
    for i in 0..35 {
        writer.try_send(request(&format!("late-{i}"), i, "alpha")).unwrap();
    }
    let started = std::time::Instant::now();
    let report = task.shutdown().await;
    assert_eq!(report.written, 35);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(db.store.counts().await.unwrap().requests, 35);
}

async fn drops_only_the_record_that_cannot_be_written(db: &TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), options(100, 100, 50));
    let mut bad = outcome("b", "alpha", 1);
    bad.cost_usd = f64::INFINITY;
    writer.send(request("a", 1, "alpha")).await.unwrap();
    writer.send(bad).await.unwrap();
    writer.send(request("b", 2, "alpha")).await.unwrap();
    writer.send(outcome("a", "alpha", 1)).await.unwrap();
    let report = task.shutdown().await;
    assert_eq!((report.written, report.dropped, report.failed_batches), (3, 1, 1), "{report:?}");
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (2, 1));
}

async fn wait_until<F: AsyncFn() -> bool>(condition: F) -> bool {
    for _ in 0..200 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Holds SQLite's write lock from a connection of its own, as another process would.
async fn lock_sqlite(url: &str) -> AnyConnection {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut conn).await.unwrap();
    conn
}

async fn unlock_sqlite(mut conn: AnyConnection) {
    sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn impatient() -> StoreOptions {
    StoreOptions { busy_timeout: Duration::from_millis(10), ..StoreOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_while_the_database_is_locked() {
    let db = TestDb::sqlite_file_with(&impatient()).await;
    let lock = lock_sqlite(&db.url).await;
    let (writer, task) = spawn_writer(db.store.clone(), options(100, 100, 5));
    for i in 0..10 {
        writer.send(request(&format!("r{i}"), i, "alpha")).await.unwrap();
    }
    let retried = wait_until(|| async { writer.metrics().retries >= 3 }).await;
    assert!(retried, "{:?}", writer.metrics());
    assert_eq!(writer.metrics().written, 0);

    unlock_sqlite(lock).await;
    let report = task.shutdown().await;
    assert_eq!((report.written, report.dropped), (10, 0), "{report:?}");
    assert_eq!(db.store.counts().await.unwrap().requests, 10);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_last_retry_and_counts_it() {
    let db = TestDb::sqlite_file_with(&impatient()).await;
    let lock = lock_sqlite(&db.url).await;
    let mut options = options(100, 100, 50);
    options.retry.max_retries = 2;
    let (writer, task) = spawn_writer(db.store.clone(), options);
    for i in 0..5 {
        writer.send(request(&format!("r{i}"), i, "alpha")).await.unwrap();
    }
    let report = task.shutdown().await;
    assert_eq!(report.written, 0);
    assert_eq!(report.dropped, 5, "{report:?}");
    assert!(report.failed_batches >= 1);
    // Each failed batch was tried three times in all.
    assert_eq!(report.retries, 2 * report.failed_batches);

    unlock_sqlite(lock).await;
    assert_eq!(db.store.counts().await.unwrap().requests, 0);
    db.finish().await;
}

/// While the writer is stuck, the queue fills: `try_send` refuses and hands the record back,
/// and `send` waits instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pushes_back() {
    let db = TestDb::sqlite_file().await;
    let lock = lock_sqlite(&db.url).await;
    // Batches of one: once the writer has taken the first record it is writing, not
    // gathering more.
    let (writer, task) = spawn_writer(db.store.clone(), options(2, 1, 5));
    writer.send(request("first", 1, "alpha")).await.unwrap();
    // The writer takes the first record and blocks on the lock.
    let taken = wait_until(|| async { writer.metrics().queue_depth == 0 }).await;
    assert!(taken);
    writer.try_send(request("second", 2, "alpha")).unwrap();
    writer.try_send(request("third", 3, "alpha")).unwrap();
    match writer.try_send(request("fourth", 4, "alpha")) {
        Err(TrySendError::Full(record)) => assert!(matches!(record, Record::Request(_))),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(writer.metrics().queue_depth, 2);

    let waiting = tokio::spawn({
        let writer = writer.clone();
        async move { writer.send(request("fourth", 4, "alpha")).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "send should wait for room");

    unlock_sqlite(lock).await;
    waiting.await.unwrap();
    let report = task.shutdown().await;
    assert_eq!(
        report,
        WriterReport {
            accepted: 4,
            written: 4,
            retries: 0,
            dropped: 0,
            failed_batches: 0,
            ..report
        }
    );
    assert_eq!(db.store.counts().await.unwrap().requests, 4);
    db.finish().await;
}

/// PostgreSQL drops the writer's connections mid-stream (a failover, a restart); nothing
/// accepted may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_postgres_dropping_its_connections() {
    let Some(db) = TestDb::postgres().await else { return };
    let (writer, task) = spawn_writer(db.store.clone(), options(1_000, 50, 2));
    let base_url = std::env::var(POSTGRES_ENV).unwrap();
    let mut admin = AnyConnection::connect(&base_url).await.unwrap();
    let application = db.url.rsplit("application_name=").next().unwrap().to_owned();

    for round in 0..5 {
        for i in 0..100 {
            let id = format!("p{round}-{i}");
            writer.send(request(&id, i, "alpha")).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        sqlx::query(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind(&application)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    }
    let report = task.shutdown().await;
    assert_eq!((report.written, report.dropped), (500, 0), "{report:?}");
    assert_eq!(db.store.counts().await.unwrap().requests, 500);
    admin.close().await.unwrap();
    db.finish().await;
}
