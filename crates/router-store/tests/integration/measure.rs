//! Throughput and query-time figures, printed rather than asserted (they depend on the
//! machine). Run with:
//! `cargo test -p router-store --test integration measure -- --ignored --nocapture`
//! (set `LLM_ROUTER_TEST_POSTGRES` to include PostgreSQL).

use std::time::Instant;

use router_store::{DecisionFilter, Record, StatsQuery, WriterOptions, spawn_writer};

use crate::common::{TestDb, feedback, outcome, request};

const REQUESTS: usize = 100_000;

async fn measure(name: &str, db: TestDb) {
    let (writer, task) = spawn_writer(db.store.clone(), WriterOptions::default());
    let started = Instant::now();
    for i in 0..REQUESTS {
        let id = format!("m-{i:06}");
        let at = i as i64 * 10;
        let mut request = request(&id, at, ["alpha", "beta", "gamma"][i % 3]);
        request.language = Some(["en", "zh"][i % 2].to_owned());
        request.domain = Some(["code", "math", "chat", "writing"][i % 4].to_owned());
        let mut outcome = outcome(&id, &request.chosen_model, (i % 997) as u64);
        outcome.cost_usd = 0.0001;
        writer.send(Record::from(request)).await.unwrap();
        writer.send(Record::from(outcome)).await.unwrap();
        if i % 10 == 0 {
            writer.send(feedback(&id, 0.5, at + 5)).await.unwrap();
        }
    }
    let report = task.shutdown().await;
    let elapsed = started.elapsed();
    assert_eq!(report.dropped, 0);
    println!(
        "{name}: wrote {} records in {} batches in {:.2?} ({:.0} records/s)",
        report.written,
        report.batches,
        elapsed,
        report.written as f64 / elapsed.as_secs_f64()
    );

    let started = Instant::now();
    let rows = db.store.stats(&StatsQuery::default()).await.unwrap();
    println!(
        "{name}: stats over {REQUESTS} requests: {} groups in {:.2?}",
        rows.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let rows = db
        .store
        .stats(&StatsQuery { since_ms: Some(REQUESTS as i64 * 9), by_complexity: true })
        .await
        .unwrap();
    println!("{name}: stats over the last 10%: {} groups in {:.2?}", rows.len(), started.elapsed());
    let started = Instant::now();
    let buckets = db.store.timeseries(0, REQUESTS as i64 * 10, REQUESTS as i64 / 10).await.unwrap();
    println!(
        "{name}: timeseries over {REQUESTS} requests: {} buckets in {:.2?}",
        buckets.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let views = db.store.recent_decisions(&DecisionFilter::default(), 100).await.unwrap();
    println!("{name}: 100 recent decisions in {:.2?}", started.elapsed());
    let filter = DecisionFilter {
        model: Some("beta".into()),
        language: Some("zh".into()),
        ..DecisionFilter::default()
    };
    let started = Instant::now();
    let filtered = db.store.recent_decisions(&filter, 100).await.unwrap();
    println!("{name}: 100 recent decisions of beta in zh in {:.2?}", started.elapsed());
    assert_eq!((views.len(), filtered.len()), (100, 100));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run it on purpose"]
async fn measure_throughput_and_query_times() {
    measure("sqlite memory", TestDb::sqlite_memory().await).await;
    measure("sqlite file", TestDb::sqlite_file().await).await;
    if let Some(db) = TestDb::postgres().await {
        measure("postgres", db).await;
    }
}
