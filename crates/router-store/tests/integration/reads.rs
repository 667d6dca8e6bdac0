//! Writing batches and reading decisions, feedback and filters back.

use router_core::{Decision, Estimate, FeatureExtractor, Profile, Prompt, RankedCandidate, Source};
use std::sync::Arc;

use router_store::{
    Api, Attempt, CapturedPrompt, DecisionFilter, DecisionSource, DecisionView, FeedbackRecord,
    OutcomeStatus, Rating, Record, RequestContext, RequestRecord, RoutedRequest, Score,
    StatusFilter, StoreError, StoredPrompt, WriterOptions, spawn_writer,
};

use crate::common::{TestDb, dataset, feedback, ids, on_every_backend, outcome, request};

on_every_backend!(
    every_field_round_trips,
    outcome_first_in_a_batch_is_fine,
    an_outcome_in_a_later_batch_joins_its_request,
    an_outcome_alone_is_not_a_decision,
    a_batch_with_feedback_may_hold_a_request_without_its_outcome,
    feedback_replaces_earlier_feedback,
    filters_narrow_recent_decisions,
    a_bad_record_fails_the_whole_batch,
    rewriting_a_batch_is_harmless,
    recent_feedback_carries_context,
    a_routed_request_is_stored_as_its_record,
    a_large_batch_is_stored_whole,
);

/// A request, outcome and feedback with every optional field set, and unusual values.
fn full_records() -> (RequestRecord, router_store::OutcomeRecord, FeedbackRecord) {
    let request = RequestRecord {
        id: "0190c5a2-7e2b-7c4d-9f00-000000000001".to_owned(),
        received_at_ms: 1_767_225_600_123,
        api: Api::Anthropic,
        requested_model: "auto:quality".to_owned(),
        profile: Some("quality".to_owned()),
        stream: true,
        prompt: StoredPrompt::Full(
            "如何在 Kubernetes 中部署 Postgres？ it's \"quoted\"".to_owned(),
        ),
        message_count: 7,
        features_json: r#"{"language":{"primary":"zh"},"prompt_tokens":31}"#.to_owned(),
        language: Some("zh".to_owned()),
        domain: Some("code".to_owned()),
        complexity: Some("high".to_owned()),
        chosen_model: "claude-sonnet".to_owned(),
        source: DecisionSource::Judge,
        reason: "the judge prefers it for Chinese code".to_owned(),
        ranking_json: r#"[{"model":"claude-sonnet"},{"model":"deepseek"}]"#.to_owned(),
        decision_us: 1_234_567,
    };
    let outcome = router_store::OutcomeRecord {
        request_id: request.id.clone(),
        finished_at_ms: 1_767_225_612_000,
        status: OutcomeStatus::Ok,
        http_status: 200,
        model: Some("deepseek".to_owned()),
        deployment: Some("deepseek-primary".to_owned()),
        latency_ms: 11_877,
        ttft_ms: Some(812),
        input_tokens: 4_000_000_000,
        output_tokens: 912,
        cost_usd: 0.000_123_456_789,
        error_kind: Some("partial".to_owned()),
        error_message: Some("first attempt: 529 overloaded".to_owned()),
        attempts: vec![
            Attempt {
                model: "claude-sonnet".to_owned(),
                deployment: "anthropic-main".to_owned(),
                error_kind: Some("overloaded".to_owned()),
                duration_ms: 120,
            },
            Attempt {
                model: "deepseek".to_owned(),
                deployment: "deepseek-primary".to_owned(),
                error_kind: None,
                duration_ms: 11_700,
            },
        ],
    };
    let feedback = FeedbackRecord {
        decision_id: request.id.clone(),
        created_at_ms: 1_767_225_700_000,
        score: Score::from_rating(Rating::new(4).unwrap()),
        rating: Rating::new(4),
        comment: Some("好，但是有点慢".to_owned()),
    };
    (request, outcome, feedback)
}

async fn every_field_round_trips(db: &TestDb) {
    let (request, outcome, feedback) = full_records();
    let mut hashed = crate::common::request("hashed", 10, "alpha");
    hashed.prompt = StoredPrompt::Hash("9f86d081884c7d65".to_owned());
    hashed.profile = None;
    hashed.language = None;
    hashed.domain = None;
    hashed.complexity = None;
    hashed.api = Api::Simple;
    let bare = crate::common::request("bare", 20, "alpha");
    // Far over the per-statement budget of a multi-row insert: it goes in a statement alone.
    let mut long = crate::common::request("long", 5, "alpha");
    long.prompt = StoredPrompt::Full("长".repeat(40_000));
    // The writer's usual batch holds only requests and outcomes (an SQLite file takes it
    // through a connection of the SQLite driver's own); feedback comes in a batch of its own.
    db.store
        .write_batch(&[
            request.clone().into(),
            outcome.clone().into(),
            hashed.clone().into(),
            bare.clone().into(),
            long.clone().into(),
        ])
        .await
        .unwrap();
    db.store.write_batch(&[feedback.clone().into()]).await.unwrap();

    let view = db.store.decision(&request.id).await.unwrap().unwrap();
    assert_eq!(
        view,
        DecisionView {
            request: request.clone(),
            outcome: Some(outcome.clone()),
            feedback: Some(feedback.clone())
        }
    );
    let view = db.store.decision("hashed").await.unwrap().unwrap();
    assert_eq!(view, DecisionView { request: hashed.clone(), outcome: None, feedback: None });
    assert_eq!(db.store.decision("missing").await.unwrap(), None);

    let recent = db.store.recent_decisions(&DecisionFilter::default(), 10).await.unwrap();
    assert_eq!(ids(&recent), [request.id.as_str(), "bare", "hashed", "long"]);
    assert_eq!(recent[3].request, long);
    assert_eq!(recent[0].outcome.as_ref(), Some(&outcome));
    assert_eq!(recent[1].request, bare);

    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes, counts.feedback), (4, 1, 1));

    let feedback_views = db.store.recent_feedback(10).await.unwrap();
    assert_eq!(feedback_views.len(), 1);
    assert_eq!(feedback_views[0].feedback, feedback);
}

async fn outcome_first_in_a_batch_is_fine(db: &TestDb) {
    // The writer makes no promise about order, so an outcome and feedback may come first…
    db.store
        .write_batch(&[
            feedback("late", 0.5, 3).into(),
            outcome("late", "alpha", 10).into(),
            request("late", 1, "alpha").into(),
        ])
        .await
        .unwrap();
    // …or arrive in a batch of their own before the request's.
    db.store.write_batch(&[outcome("later", "alpha", 10).into()]).await.unwrap();
    db.store.write_batch(&[request("later", 2, "alpha").into()]).await.unwrap();

    for id in ["late", "later"] {
        let view = db.store.decision(id).await.unwrap().unwrap();
        assert_eq!(view.outcome.map(|o| o.request_id), Some(id.to_owned()));
    }
}

async fn an_outcome_in_a_later_batch_joins_its_request(db: &TestDb) {
    let pending = DecisionFilter { status: Some(StatusFilter::Pending), ..Default::default() };
    db.store.write_batch(&[request("slow", 1, "alpha").into()]).await.unwrap();
    let view = db.store.decision("slow").await.unwrap().unwrap();
    assert!(view.outcome.is_none());
    assert_eq!(ids(&db.store.recent_decisions(&pending, 10).await.unwrap()), ["slow"]);

    db.store.write_batch(&[outcome("slow", "beta", 900).into()]).await.unwrap();
    let view = db.store.decision("slow").await.unwrap().unwrap();
    assert_eq!(view.request, request("slow", 1, "alpha"));
    assert_eq!(view.outcome, Some(outcome("slow", "beta", 900)));
    assert!(db.store.recent_decisions(&pending, 10).await.unwrap().is_empty());

    // Either part written again (a retried batch, a duplicate) changes nothing: the first
    // write of a part wins.
    db.store
        .write_batch(&[request("slow", 7, "gamma").into(), outcome("slow", "gamma", 5).into()])
        .await
        .unwrap();
    let view = db.store.decision("slow").await.unwrap().unwrap();
    assert_eq!(view.request, request("slow", 1, "alpha"));
    assert_eq!(view.outcome, Some(outcome("slow", "beta", 900)));
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (1, 1));
}

async fn an_outcome_alone_is_not_a_decision(db: &TestDb) {
    db.store.write_batch(&[outcome("early", "alpha", 10).into()]).await.unwrap();
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (0, 1));
    assert!(db.store.decision("early").await.unwrap().is_none());
    assert!(db.store.recent_decisions(&DecisionFilter::default(), 10).await.unwrap().is_empty());
    assert!(db.store.stats(&Default::default()).await.unwrap().is_empty());
    let buckets = db.store.timeseries(-1_000, 1_000, 1_000).await.unwrap();
    assert!(buckets.iter().all(|bucket| bucket.requests == 0), "{buckets:?}");

    // Its request, arriving later, makes it one.
    db.store.write_batch(&[request("early", 5, "alpha").into()]).await.unwrap();
    let view = db.store.decision("early").await.unwrap().unwrap();
    assert_eq!(view.outcome, Some(outcome("early", "alpha", 10)));
    assert_eq!(db.store.stats(&Default::default()).await.unwrap()[0].requests, 1);
}

/// Batches that carry feedback, where some requests' outcomes come in the next batch: the
/// same statements run with rows whose cost is NULL and rows whose cost is not.
async fn a_batch_with_feedback_may_hold_a_request_without_its_outcome(db: &TestDb) {
    let mut records = Vec::new();
    for i in 0..300 {
        let id = format!("f-{i:03}");
        let mut answered = outcome(&id, "alpha", 10);
        answered.cost_usd = 0.25;
        records.push(Record::from(request(&id, i, "alpha")));
        records.push(answered.into());
        if i % 10 == 0 {
            records.push(feedback(&id, 0.5, i + 5).into());
        }
    }
    // 41 records a batch: most batches end on a request whose outcome opens the next.
    for batch in records.chunks(41) {
        db.store.write_batch(batch).await.unwrap();
    }
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes, counts.feedback), (300, 300, 30));
    let view = db.store.decision("f-299").await.unwrap().unwrap();
    assert_eq!(view.outcome.map(|o| o.cost_usd), Some(0.25));
}

async fn feedback_replaces_earlier_feedback(db: &TestDb) {
    let store = &db.store;
    store.write_batch(&[request("d", 1, "alpha").into()]).await.unwrap();
    let stored = async || store.decision("d").await.unwrap().unwrap().feedback.unwrap();

    let mut first = feedback("d", 0.2, 100);
    first.rating = Rating::new(2);
    first.comment = Some("meh".to_owned());
    store.upsert_feedback(&first).await.unwrap();
    assert_eq!(stored().await, first);

    // Later feedback replaces all of it, including clearing the rating and comment.
    let second = feedback("d", 0.9, 200);
    store.upsert_feedback(&second).await.unwrap();
    assert_eq!(stored().await, second);

    // Feedback older than what is stored (a late retry, another replica) does not win.
    store.upsert_feedback(&feedback("d", 0.0, 150)).await.unwrap();
    assert_eq!(stored().await, second);

    // Through a batch: the newest of several wins, whatever their order.
    store
        .write_batch(&[feedback("d", 0.7, 400).into(), feedback("d", 0.3, 300).into()])
        .await
        .unwrap();
    assert_eq!(stored().await, feedback("d", 0.7, 400));
    assert_eq!(store.counts().await.unwrap().feedback, 1);

    // Feedback may be stored for a decision the store does not (yet) have.
    store.upsert_feedback(&feedback("unknown", 1.0, 1)).await.unwrap();
    assert_eq!(store.counts().await.unwrap().feedback, 2);
}

async fn filters_narrow_recent_decisions(db: &TestDb) {
    db.store.write_batch(&dataset()).await.unwrap();
    let list = async |filter: DecisionFilter, limit: u32| {
        let views = db.store.recent_decisions(&filter, limit).await.unwrap();
        ids(&views).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let all = ["r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"];
    assert_eq!(list(DecisionFilter::default(), 100).await, all);
    assert_eq!(list(DecisionFilter::default(), 3).await, all[..3]);

    // The model filter matches the chosen model or the one that answered (r6 was routed to
    // alpha and answered by beta).
    let beta = DecisionFilter { model: Some("beta".into()), ..DecisionFilter::default() };
    assert_eq!(list(beta, 100).await, ["r8", "r7", "r6"]);
    let alpha_ok = DecisionFilter {
        model: Some("alpha".into()),
        status: Some(StatusFilter::Finished(OutcomeStatus::Ok)),
        ..DecisionFilter::default()
    };
    assert_eq!(list(alpha_ok, 100).await, ["r6", "r5", "r4", "r2", "r1", "r0"]);

    let math = DecisionFilter { domain: Some("math".into()), ..DecisionFilter::default() };
    assert_eq!(list(math, 100).await, ["r8", "r7", "r6"]);
    let zh = DecisionFilter { language: Some("zh".into()), ..DecisionFilter::default() };
    assert_eq!(list(zh, 2).await, ["r8", "r7"]);
    let high = DecisionFilter { complexity: Some("high".into()), ..DecisionFilter::default() };
    assert_eq!(list(high, 100).await, ["r5"]);
    let judge = DecisionFilter { source: Some(DecisionSource::Judge), ..DecisionFilter::default() };
    assert_eq!(list(judge, 100).await, ["r8", "r5"]);

    let status = |status| DecisionFilter { status: Some(status), ..DecisionFilter::default() };
    let errors = status(StatusFilter::Finished(OutcomeStatus::Error));
    assert_eq!(list(errors, 100).await, ["r9", "r3"]);
    let cancelled = status(StatusFilter::Finished(OutcomeStatus::Cancelled));
    assert_eq!(list(cancelled, 100).await, ["r7"]);
    assert_eq!(list(status(StatusFilter::Pending), 100).await, ["r8"]);

    let window = DecisionFilter {
        since_ms: Some(1_250),
        until_ms: Some(1_300),
        ..DecisionFilter::default()
    };
    assert_eq!(list(window, 100).await, ["r7", "r6", "r5"]);

    // Paging: each page continues after the last decision of the previous one, even when
    // decisions share a millisecond across the boundary.
    let same_time: Vec<Record> =
        ["s1", "s2", "s3"].iter().map(|id| request(id, 1_200, "alpha").into()).collect();
    db.store.write_batch(&same_time).await.unwrap();
    let expected = ["r9", "r8", "r7", "r6", "r5", "s3", "s2", "s1", "r4", "r3", "r2", "r1", "r0"];
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let filter = DecisionFilter { page_after: after, ..DecisionFilter::default() };
        let page = db.store.recent_decisions(&filter, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        pages.push(ids(&page).into_iter().map(str::to_owned).collect::<Vec<_>>());
    }
    // Pages of three split the three decisions at 1200 ms between two pages.
    assert_eq!(pages.len(), 5);
    assert_eq!(pages.concat(), expected);

    let nothing = DecisionFilter { model: Some("omega".into()), ..DecisionFilter::default() };
    assert!(list(nothing, 100).await.is_empty());
    // A filter value is data, never SQL.
    let injection =
        DecisionFilter { domain: Some("x' OR '1'='1".into()), ..DecisionFilter::default() };
    assert!(list(injection, 100).await.is_empty());
}

async fn a_bad_record_fails_the_whole_batch(db: &TestDb) {
    let mut bad = outcome("b", "alpha", 1);
    bad.cost_usd = f64::NAN;
    let error =
        db.store.write_batch(&[request("a", 1, "alpha").into(), bad.into()]).await.unwrap_err();
    assert!(matches!(error, StoreError::InvalidRecord(_)), "{error}");
    assert!(!error.is_transient());

    let mut huge = outcome("c", "alpha", 1);
    huge.output_tokens = u64::MAX;
    let error = db.store.write_batch(&[huge.into()]).await.unwrap_err();
    assert!(matches!(error, StoreError::InvalidRecord(_)), "{error}");

    // Nothing of either batch was kept.
    assert_eq!(db.store.counts().await.unwrap(), router_store::Counts::default());
}

/// A batch as large as the writer makes (500 records), of rows of about 1 KB: SQLite takes
/// it in statements of up to 128 rows, PostgreSQL in statements of at most 12 KB.
async fn a_large_batch_is_stored_whole(db: &TestDb) {
    let mut batch: Vec<Record> = Vec::new();
    for i in 0..250 {
        let id = format!("big-{i:03}");
        let mut r = request(&id, i, "alpha");
        r.reason = format!("row {i}: {}", "x".repeat(900));
        batch.push(r.into());
        batch.push(outcome(&id, "alpha", 10 + i as u64).into());
    }
    db.store.write_batch(&batch).await.unwrap();
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (250, 250));
    // Values land in their own row and column, first, middle and last alike.
    for i in [0, 127, 128, 249] {
        let view = db.store.decision(&format!("big-{i:03}")).await.unwrap().unwrap();
        assert!(view.request.reason.starts_with(&format!("row {i}: ")), "{i}");
        assert_eq!(view.outcome.unwrap().latency_ms, 10 + i as u64, "{i}");
    }
}

async fn rewriting_a_batch_is_harmless(db: &TestDb) {
    // What a retry after an unclear commit does: the same batch twice.
    let batch: Vec<Record> = dataset();
    db.store.write_batch(&batch).await.unwrap();
    db.store.write_batch(&batch).await.unwrap();
    let counts = db.store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes, counts.feedback), (10, 9, 3));

    // The first stored request and outcome win over a later write with the same id.
    let mut changed = request("r1", 1000, "omega");
    changed.reason = "rewritten".to_owned();
    db.store.write_batch(&[changed.into()]).await.unwrap();
    let view = db.store.decision("r1").await.unwrap().unwrap();
    assert_eq!(view.request.chosen_model, "alpha");

    // The same within one batch (one multi-row statement).
    let twice: Vec<Record> = vec![
        request("dup", 1, "first").into(),
        request("dup", 1, "second").into(),
        outcome("dup", "first", 1).into(),
        outcome("dup", "second", 1).into(),
    ];
    db.store.write_batch(&twice).await.unwrap();
    let view = db.store.decision("dup").await.unwrap().unwrap();
    assert_eq!(view.request.chosen_model, "first");
    assert_eq!(view.outcome.unwrap().model.as_deref(), Some("first"));
}

async fn recent_feedback_carries_context(db: &TestDb) {
    db.store.write_batch(&dataset()).await.unwrap();
    db.store.upsert_feedback(&feedback("gone", 0.25, 50_000)).await.unwrap();
    let views = db.store.recent_feedback(10).await.unwrap();
    let summary: Vec<(&str, Option<&str>, Option<&str>, f64)> = views
        .iter()
        .map(|v| {
            (
                v.feedback.decision_id.as_str(),
                v.model.as_deref(),
                v.language.as_deref(),
                v.feedback.score.get(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("gone", None, None, 0.25),
            ("r7", Some("beta"), Some("zh"), 0.0),
            ("r2", Some("alpha"), Some("en"), 0.5),
            ("r1", Some("alpha"), Some("en"), 1.0),
        ]
    );
    assert_eq!(db.store.recent_feedback(1).await.unwrap().len(), 1);
}

/// A decision as `router-core` makes it, and the context the gateway adds.
fn core_decision(id: &str) -> (Decision, RequestContext) {
    let features = FeatureExtractor::new().extract(&Prompt::user("Write a haiku about Rust."));
    let ranking = vec![
        RankedCandidate {
            model: "small".to_owned(),
            estimate: Estimate { quality: 0.8, cost_usd: 0.001, latency_ms: 900.0, evidence: 3.0 },
            utility: 0.7,
        },
        RankedCandidate { model: "large".to_owned(), estimate: Estimate::default(), utility: 0.2 },
    ];
    let decision = Decision {
        model: "small".to_owned(),
        ranking,
        excluded: Vec::new(),
        source: Source::Policy,
        profile: Profile::Cost,
        reason: "cheapest good enough".to_owned(),
        features,
        decision_us: 87,
    };
    let context = RequestContext {
        id: id.to_owned(),
        received_at_ms: 5,
        api: Api::OpenAi,
        requested_model: "auto:cost".to_owned(),
        stream: true,
        prompt: CapturedPrompt::DigestOf("abc".to_owned()),
        message_count: 1,
    };
    (decision, context)
}

/// A request handed over as its decision is stored as the record built from it, whether it
/// goes through the batching writer (which builds the row) or straight to `write_batch`.
async fn a_routed_request_is_stored_as_its_record(db: &TestDb) {
    let (decision, through_writer) = core_decision("through-writer");
    let decision = Arc::new(decision);
    let (writer, task) = spawn_writer(db.store.clone(), WriterOptions::default());
    let routed = RoutedRequest { context: through_writer.clone(), decision: decision.clone() };
    writer.send(routed).await.unwrap();
    writer.send(outcome("through-writer", "small", 10)).await.unwrap();
    drop(writer);
    let report = task.shutdown().await;
    assert_eq!((report.written, report.dropped), (2, 0));

    let (_, direct) = core_decision("direct");
    let routed = RoutedRequest { context: direct.clone(), decision: decision.clone() };
    db.store.write_batch(&[Record::from(routed)]).await.unwrap();

    for context in [through_writer, direct] {
        let id = context.id.clone();
        let expected = RequestRecord::from_decision(context, &decision).unwrap();
        let view = db.store.decision(&id).await.unwrap().expect("stored");
        assert_eq!(view.request, expected, "{id}");
    }
}

#[test]
fn request_record_from_a_core_decision() {
    let (decision, context) = core_decision("id-1");
    let (features, ranking) = (decision.features, decision.ranking.clone());
    let record = RequestRecord::from_decision(context.clone(), &decision).unwrap();
    assert_eq!(record.id, "id-1");
    assert_eq!(record.chosen_model, "small");
    assert_eq!(record.source, DecisionSource::Policy);
    assert_eq!(record.profile.as_deref(), Some("cost"));
    assert_eq!(record.language.as_deref(), Some(features.language.primary.code()));
    assert_eq!(record.domain.as_deref(), Some(features.domain.domain.as_str()));
    assert_eq!(record.complexity.as_deref(), Some(features.complexity.band.as_str()));
    assert_eq!(record.decision_us, 87);
    let ranking_back: Vec<RankedCandidate> = serde_json::from_str(&record.ranking_json).unwrap();
    assert_eq!(ranking_back, ranking);
    let features_back: router_core::Features = serde_json::from_str(&record.features_json).unwrap();
    assert_eq!(features_back, features);

    // A request that named its model has no profile.
    let explicit = Decision { source: Source::Explicit, ..decision };
    let record = RequestRecord::from_decision(context, &explicit).unwrap();
    assert_eq!(record.profile, None);
    assert_eq!(record.source, DecisionSource::Explicit);
}
