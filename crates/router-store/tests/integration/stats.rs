//! Aggregates against numbers worked out by hand from `common::dataset` (see its table).

use router_store::{StatsQuery, StatsRow, StoreError, TimeBucket};

use crate::common::{TestDb, dataset, on_every_backend};

on_every_backend!(
    stats_match_hand_computed_numbers,
    timeseries_match_hand_computed_numbers,
    source_counts_match_hand_computed_numbers
);

fn row(model: &str, context: Option<(&str, &str)>, complexity: Option<&str>) -> StatsRow {
    StatsRow {
        model: model.to_owned(),
        domain: context.map(|c| c.0.to_owned()),
        language: context.map(|c| c.1.to_owned()),
        complexity: complexity.map(str::to_owned),
        requests: 0,
        successes: 0,
        errors: 0,
        cancelled: 0,
        feedback: 0,
        mean_score: None,
        latency_p50_ms: None,
        latency_p95_ms: None,
        ttft_p50_ms: None,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    }
}

/// Compares rows exactly, except sums of floating-point costs and scores, which may differ
/// in the last bits depending on the order the database returns rows in.
fn assert_rows(mut actual: Vec<StatsRow>, expected: Vec<StatsRow>) {
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
    for (actual, expected) in actual.iter_mut().zip(&expected) {
        assert!((actual.cost_usd - expected.cost_usd).abs() < 1e-12, "{actual:?}");
        actual.cost_usd = expected.cost_usd;
        if let (Some(a), Some(e)) = (actual.mean_score, expected.mean_score) {
            assert!((a - e).abs() < 1e-12, "{actual:?}");
            actual.mean_score = expected.mean_score;
        }
    }
    assert_eq!(actual, expected);
}

async fn stats_match_hand_computed_numbers(db: &TestDb) {
    assert!(db.store.stats(&StatsQuery::default()).await.unwrap().is_empty());
    db.store.write_batch(&dataset()).await.unwrap();
    let code_en = Some(("code", "en"));
    let math_zh = Some(("math", "zh"));

    // r1..r9: r6 counts for beta, which answered it, though alpha was chosen.
    let alpha = StatsRow {
        requests: 5,
        successes: 4,
        errors: 1,
        feedback: 2,
        mean_score: Some(0.75),
        latency_p50_ms: Some(200),
        latency_p95_ms: Some(1000),
        ttft_p50_ms: Some(20),
        input_tokens: 165,
        output_tokens: 290,
        cost_usd: 0.056,
        ..row("alpha", code_en, None)
    };
    let beta = StatsRow {
        requests: 3,
        successes: 1,
        cancelled: 1,
        feedback: 1,
        mean_score: Some(0.0),
        latency_p50_ms: Some(400),
        latency_p95_ms: Some(400),
        input_tokens: 60,
        output_tokens: 65,
        cost_usd: 0.0105,
        ..row("beta", math_zh, None)
    };
    let gamma = StatsRow { requests: 1, errors: 1, ..row("gamma", None, None) };
    let since = StatsQuery { since_ms: Some(1_000), by_complexity: false };
    let rows = db.store.stats(&since).await.unwrap();
    assert_eq!(
        rows.iter().map(StatsRow::success_rate).collect::<Vec<_>>(),
        [Some(0.8), Some(1.0), Some(0.0)]
    );
    assert_rows(rows, vec![alpha.clone(), beta.clone(), gamma.clone()]);

    // Split by complexity band; "high" sorts before "low".
    let by_band = StatsQuery { since_ms: Some(1_000), by_complexity: true };
    assert_rows(
        db.store.stats(&by_band).await.unwrap(),
        vec![
            StatsRow {
                requests: 1,
                successes: 1,
                latency_p50_ms: Some(1000),
                latency_p95_ms: Some(1000),
                input_tokens: 100,
                output_tokens: 200,
                cost_usd: 0.05,
                ..row("alpha", code_en, Some("high"))
            },
            StatsRow {
                requests: 4,
                successes: 3,
                errors: 1,
                feedback: 2,
                mean_score: Some(0.75),
                latency_p50_ms: Some(200),
                latency_p95_ms: Some(300),
                ttft_p50_ms: Some(20),
                input_tokens: 65,
                output_tokens: 90,
                cost_usd: 0.006,
                ..row("alpha", code_en, Some("low"))
            },
            StatsRow { complexity: Some("medium".to_owned()), ..beta.clone() },
            gamma.clone(),
        ],
    );

    // All time adds r0 (latency 5000) to alpha: p50 is the 3rd of 5, p95 the 5th.
    assert_rows(
        db.store.stats(&StatsQuery::default()).await.unwrap(),
        vec![
            StatsRow {
                requests: 6,
                successes: 5,
                latency_p50_ms: Some(300),
                latency_p95_ms: Some(5000),
                input_tokens: 166,
                output_tokens: 291,
                cost_usd: 0.156,
                ..alpha
            },
            beta,
            gamma,
        ],
    );

    let future = StatsQuery { since_ms: Some(10_000), by_complexity: true };
    assert!(db.store.stats(&future).await.unwrap().is_empty());
}

fn bucket(start_ms: i64) -> TimeBucket {
    TimeBucket {
        start_ms,
        requests: 0,
        errors: 0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    }
}

fn assert_buckets(mut actual: Vec<TimeBucket>, expected: Vec<TimeBucket>) {
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
    for (actual, expected) in actual.iter_mut().zip(&expected) {
        assert!((actual.cost_usd - expected.cost_usd).abs() < 1e-12, "{actual:?}");
        actual.cost_usd = expected.cost_usd;
    }
    assert_eq!(actual, expected);
}

async fn timeseries_match_hand_computed_numbers(db: &TestDb) {
    let store = &db.store;
    // An empty database still yields every bucket, for charts with no gaps.
    assert_buckets(
        store.timeseries(0, 300, 100).await.unwrap(),
        vec![bucket(0), bucket(100), bucket(200)],
    );

    store.write_batch(&dataset()).await.unwrap();
    assert_buckets(
        store.timeseries(1_000, 1_400, 100).await.unwrap(),
        vec![
            TimeBucket {
                requests: 3,
                errors: 1,
                latency_p50_ms: Some(100),
                latency_p95_ms: Some(300),
                input_tokens: 45,
                output_tokens: 60,
                cost_usd: 0.004,
                ..bucket(1_000)
            },
            TimeBucket {
                requests: 1,
                latency_p50_ms: Some(200),
                latency_p95_ms: Some(200),
                input_tokens: 20,
                output_tokens: 30,
                cost_usd: 0.002,
                ..bucket(1_100)
            },
            TimeBucket {
                requests: 3,
                latency_p50_ms: Some(400),
                latency_p95_ms: Some(1000),
                input_tokens: 160,
                output_tokens: 265,
                cost_usd: 0.0605,
                ..bucket(1_200)
            },
            TimeBucket { requests: 2, errors: 1, ..bucket(1_300) },
        ],
    );

    // The range ends mid-bucket: the last bucket only holds what came before `until`
    // (r5 at 1250 is out).
    let partial = store.timeseries(1_000, 1_250, 100).await.unwrap();
    assert_eq!(partial.iter().map(|b| b.requests).collect::<Vec<_>>(), [3, 1, 0]);

    // One big bucket sees everything in range.
    let whole = store.timeseries(0, 2_000, 2_000).await.unwrap();
    assert_eq!((whole.len(), whole[0].requests, whole[0].errors), (1, 10, 2));

    // The extremes of the time range do not overflow.
    let extremes = store.timeseries(i64::MIN, i64::MAX, i64::MAX).await.unwrap();
    let starts: Vec<i64> = extremes.iter().map(|b| b.start_ms).collect();
    assert_eq!(starts, [i64::MIN, -1, i64::MAX - 1]);
    assert_eq!(extremes.iter().map(|b| b.requests).sum::<u64>(), 10);

    for (since, until, size) in [(0, 100, 0), (0, 100, -5), (100, 100, 10), (0, 1_000_000, 1)] {
        let error = store.timeseries(since, until, size).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidArgument(_)), "{error}");
    }
}

async fn source_counts_match_hand_computed_numbers(db: &TestDb) {
    assert!(db.store.source_counts(0, 2000).await.unwrap().is_empty());
    db.store.write_batch(&dataset()).await.unwrap();
    let counts = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    // r0..r9: policy r0–r4 and r9, judge r5 and r8, fallback r6, explicit r7.
    let all = db.store.source_counts(0, 2000).await.unwrap();
    assert_eq!(all, counts(&[("explicit", 1), ("fallback", 1), ("judge", 2), ("policy", 6)]));
    // [1000, 1300): r1..r7.
    let window = db.store.source_counts(1000, 1300).await.unwrap();
    assert_eq!(window, counts(&[("explicit", 1), ("fallback", 1), ("judge", 1), ("policy", 4)]));
}
