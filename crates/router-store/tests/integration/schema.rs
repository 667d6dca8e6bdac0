//! Connecting, migrating, and the small tables (state, audit log).

use router_store::{AuditRecord, Backend, Counts, Pruned, Store, StoreError};

use crate::common::{PgSchema, TestDb, on_every_backend, outcome, request};

on_every_backend!(
    migrating_twice_changes_nothing,
    state_round_trips,
    audit_log_keeps_order,
    a_second_store_sees_the_same_data,
    prune_removes_old_rows,
);

async fn migrating_twice_changes_nothing(db: &TestDb) {
    // `TestDb` has migrated once already.
    db.store.write_batch(&[request("kept", 1, "alpha").into()]).await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    let counts = db.store.counts().await.unwrap();
    assert_eq!(counts, Counts { requests: 1, ..Counts::default() });
    db.store.ping().await.unwrap();
}

async fn state_round_trips(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.get_state("posteriors/a").await.unwrap(), None);

    let before = now_ms();
    store.put_state("posteriors/a", r#"{"alpha":[1,2]}"#).await.unwrap();
    let entry = store.get_state("posteriors/a").await.unwrap().unwrap();
    assert_eq!(entry.value, r#"{"alpha":[1,2]}"#);
    assert!(entry.updated_at_ms >= before && entry.updated_at_ms <= now_ms() + 1);

    // A second put replaces the value; it does not add a row.
    store.put_state("posteriors/a", r#"{"alpha":[3,4]}"#).await.unwrap();
    assert_eq!(store.get_state("posteriors/a").await.unwrap().unwrap().value, r#"{"alpha":[3,4]}"#);

    // Prefixes match literally: `%` and `_` are not wildcards.
    for name in ["posteriors/b", "priors", "posteriors%x", "posteriors_", "x/posteriors/c"] {
        store.put_state(name, "{}").await.unwrap();
    }
    let names = |entries: Vec<router_store::StateEntry>| {
        entries.into_iter().map(|entry| entry.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_state("posteriors/").await.unwrap()),
        ["posteriors/a", "posteriors/b"]
    );
    assert_eq!(names(store.list_state("posteriors%").await.unwrap()), ["posteriors%x"]);
    assert_eq!(store.list_state("").await.unwrap().len(), 6);
    assert_eq!(store.counts().await.unwrap().state, 6);

    assert!(store.delete_state("priors").await.unwrap());
    assert!(!store.delete_state("priors").await.unwrap());
    assert_eq!(store.get_state("priors").await.unwrap(), None);

    // Large blobs and non-ASCII text survive unchanged.
    let big = format!(r#"{{"note":"学习","data":"{}"}}"#, "x".repeat(200_000));
    store.put_state("big", &big).await.unwrap();
    assert_eq!(store.get_state("big").await.unwrap().unwrap().value, big);
}

async fn audit_log_keeps_order(db: &TestDb) {
    let entry = |at: i64, action: &str| AuditRecord {
        created_at_ms: at,
        actor: "admin".to_owned(),
        action: action.to_owned(),
        target: Some("gpt-4o".to_owned()),
        detail: Some(r#"{"from":1,"to":3}"#.to_owned()),
    };
    let first = db.store.audit(&entry(100, "set_weight")).await.unwrap();
    let second = db.store.audit(&entry(200, "disable")).await.unwrap();
    assert!(second > first);
    // Through a batch, as the writer does.
    db.store
        .write_batch(&[entry(300, "reset_circuit").into(), entry(150, "enable").into()])
        .await
        .unwrap();

    let log = db.store.audit_log(10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["reset_circuit", "disable", "enable", "set_weight"]);
    assert_eq!(log[1].id, second);
    assert_eq!(log[1].record, entry(200, "disable"));
    assert_eq!(db.store.audit_log(2).await.unwrap().len(), 2);
    assert_eq!(db.store.counts().await.unwrap().audit, 4);
}

async fn a_second_store_sees_the_same_data(db: &TestDb) {
    if db.url.contains(":memory:") {
        // An in-memory database belongs to its one connection; there is no second store.
        return;
    }
    // Two gateway replicas sharing one database.
    let replica = Store::connect(&db.url).await.unwrap();
    replica.migrate().await.unwrap();
    replica.write_batch(&[request("from-replica", 5, "alpha").into()]).await.unwrap();
    db.store.put_state("posteriors/one", "{}").await.unwrap();

    assert!(db.store.decision("from-replica").await.unwrap().is_some());
    assert_eq!(replica.list_state("posteriors/").await.unwrap().len(), 1);
    replica.close().await;
}

async fn prune_removes_old_rows(db: &TestDb) {
    let mut records = crate::common::dataset();
    records.push(
        AuditRecord {
            created_at_ms: 0,
            actor: "admin".to_owned(),
            action: "disable".to_owned(),
            target: None,
            detail: None,
        }
        .into(),
    );
    db.store.write_batch(&records).await.unwrap();
    db.store.put_state("posteriors", "{}").await.unwrap();

    // An orphan outcome (its request never stored) from before the cut goes too; one from
    // after it stays.
    db.store
        .write_batch(&[outcome("orphan-old", "alpha", 1).into(), {
            let mut late = outcome("orphan-new", "alpha", 1);
            late.finished_at_ms = 5_000;
            late.into()
        }])
        .await
        .unwrap();

    // r0..r4 were received before 1200: they go with their outcomes (even r0's, finished at
    // 5500) and their feedback (r1, r2: given at 11000 and later).
    let pruned = db.store.prune(1_200).await.unwrap();
    assert_eq!(pruned, Pruned { requests: 5, outcomes: 6, feedback: 2 });
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes, counts.feedback), (5, 5, 1));
    // The audit log and learned state are not subject to retention.
    assert_eq!((counts.audit, counts.state), (1, 1));
    assert!(db.store.decision("r4").await.unwrap().is_none());
    assert!(db.store.decision("r5").await.unwrap().is_some());
}

/// The schema as version 1 left it, with a request that ended, one still running, an
/// outcome whose request was never stored, and feedback; then today's migrations.
async fn carry_over_a_version_1_database(url: &str, backend: Backend) {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::{AnyConnection, Connection, SqlSafeStr};

    let initial = match backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_initial.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_initial.sql"),
    };
    let version_1 = Migrator::with_migrations(vec![Migration::new(
        1,
        "initial".into(),
        MigrationType::Simple,
        initial.into_sql_str(),
        false,
    )]);
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    version_1.run(&mut conn).await.unwrap();
    let stream = if backend == Backend::Sqlite { "1" } else { "TRUE" };
    for sql in [
        format!(
            "INSERT INTO requests (id, received_at, api, requested_model, profile, stream, \
             prompt_kind, prompt, message_count, features, language, domain, complexity, \
             chosen_model, source, reason, ranking, decision_us) VALUES \
             ('done', 100, 'openai', 'auto', 'balanced', {stream}, 'hash', 'ab12', 2, '{{}}', \
              'en', 'code', 'low', 'alpha', 'policy', 'cheapest good', '[]', 40), \
             ('running', 200, 'anthropic', 'beta', NULL, {stream}, 'none', NULL, 1, '{{}}', \
              NULL, NULL, NULL, 'beta', 'explicit', 'asked for', '[]', 3)"
        ),
        "INSERT INTO outcomes (request_id, finished_at, status, http_status, model, deployment, \
         latency_ms, ttft_ms, input_tokens, output_tokens, cost_usd, error_kind, error_message, \
         attempts) VALUES \
         ('done', 900, 'ok', 200, 'alpha', 'alpha-east', 800, 120, 10, 20, 0.25, NULL, NULL, \
          '[{\"model\":\"alpha\",\"deployment\":\"alpha-east\",\"error_kind\":null,\"duration_ms\":800}]'), \
         ('lost', 950, 'error', 502, NULL, NULL, 30, NULL, 0, 0, 0.0, 'upstream', 'bad gateway', '[]')"
            .to_owned(),
        "INSERT INTO feedback (decision_id, created_at, score, rating, comment) \
         VALUES ('done', 1000, 0.75, 4, 'fine')"
            .to_owned(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes, counts.feedback), (2, 2, 1));

    let done = store.decision("done").await.unwrap().unwrap();
    assert_eq!(done.request.received_at_ms, 100);
    assert_eq!(done.request.prompt, router_store::StoredPrompt::Hash("ab12".to_owned()));
    assert!(done.request.stream);
    let outcome = done.outcome.unwrap();
    assert_eq!(
        (outcome.finished_at_ms, outcome.latency_ms, outcome.ttft_ms, outcome.cost_usd),
        (900, 800, Some(120), 0.25)
    );
    assert_eq!(outcome.attempts.len(), 1);
    assert_eq!(done.feedback.map(|f| f.comment), Some(Some("fine".to_owned())));

    let running = store.decision("running").await.unwrap().unwrap();
    assert!(running.outcome.is_none());
    assert_eq!(running.request.chosen_model, "beta");

    // The lone outcome is kept, as before, and found again by the retention policy.
    assert!(store.decision("lost").await.unwrap().is_none());
    let pruned = store.prune(960).await.unwrap();
    assert_eq!(pruned, Pruned { requests: 2, outcomes: 2, feedback: 1 });
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_carried_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("router.db").display());
    // The store creates the file; version 1 is laid down through a store that is not
    // migrated.
    Store::connect(&url).await.unwrap().close().await;
    carry_over_a_version_1_database(&url, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_carried_over_postgres() {
    let Some(schema) = PgSchema::from_env().await else { return };
    carry_over_a_version_1_database(&schema.url(), Backend::Postgres).await;
    schema.drop_now().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn sqlite_file_and_its_directory_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("deeper").join("router.db");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    store.write_batch(&[request("a", 1, "alpha").into()]).await.unwrap();
    assert!(path.is_file());
    // Write-ahead logging is on: the log file sits next to the database while it is open.
    assert!(path.with_extension("db-wal").is_file());
    store.close().await;

    // Reopening finds the data.
    let store = Store::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.counts().await.unwrap().requests, 1);
    store.close().await;
}

/// The page size an SQLite file was made with, from its header.
fn page_size(path: &std::path::Path) -> u32 {
    let header = std::fs::read(path).unwrap();
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u32::from(size),
    }
}

#[tokio::test]
async fn a_new_sqlite_file_gets_large_pages_and_an_old_one_keeps_its_own() {
    use sqlx::{AnyConnection, Connection};

    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    let store = Store::connect(&format!("sqlite:{}", new.display())).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    assert_eq!(page_size(&new), 16_384);

    // A file made elsewhere with 4 KiB pages stays as it is, and works.
    let old = dir.path().join("old.db");
    sqlx::any::install_default_drivers();
    let mut conn =
        AnyConnection::connect(&format!("sqlite:{}?mode=rwc", old.display())).await.unwrap();
    sqlx::raw_sql("PRAGMA page_size = 4096; CREATE TABLE made_elsewhere (x INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = Store::connect(&format!("sqlite:{}", old.display())).await.unwrap();
    store.migrate().await.unwrap();
    store.write_batch(&[request("a", 1, "alpha").into()]).await.unwrap();
    assert_eq!(store.counts().await.unwrap().requests, 1);
    store.close().await;
    assert_eq!(page_size(&old), 4_096);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in ["mysql://root:hunter2@localhost/db", "router.db", ""] {
        let error = Store::connect(url).await.unwrap_err();
        assert!(matches!(error, StoreError::UnsupportedUrl(_)), "{url}: {error}");
        assert!(!error.to_string().contains("hunter2"));
    }
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data_across_queries() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    // Many concurrent queries must all reach the same (single-connection) database.
    let writes = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store.write_batch(&[request(&format!("m{i}"), i, "alpha").into()]).await.unwrap();
        })
    });
    for write in writes {
        write.await.unwrap();
    }
    assert_eq!(store.counts().await.unwrap().requests, 20);
    assert_eq!(store.backend(), Backend::Sqlite);
}

/// Replicas starting together all run migrations; PostgreSQL's advisory lock must make that
/// safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_can_migrate_concurrently() {
    let Some(schema) = PgSchema::from_env().await else { return };
    let url = schema.url();
    let migrations = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let store = Store::connect(&url).await.unwrap();
            assert_eq!(store.backend(), Backend::Postgres);
            store.migrate().await.unwrap();
            store.close().await;
        })
    });
    for migration in migrations {
        migration.await.unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), Counts::default());
    store.close().await;
    let name = schema.name().to_owned();
    schema.drop_now().await;
    assert!(name.starts_with("t_"));
}
