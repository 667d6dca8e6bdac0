//! Reading decisions back: one by id, the recent ones with filters, recent feedback, the
//! audit log.

use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::record::{
    Api, Attempt, AuditEntry, AuditRecord, DecisionSource, DecisionView, FeedbackRecord,
    FeedbackView, OutcomeRecord, OutcomeStatus, Rating, RequestRecord, Score, StoredPrompt,
};
use crate::sql::{
    Conditions, Statement, from_db, get_f64, get_i64, get_opt_i64, get_opt_string, get_opt_u64,
    get_string, get_u64, get_word,
};
use crate::store::Store;

/// The most rows a listing returns, whatever limit it is asked for.
pub const MAX_LIMIT: u32 = 10_000;

/// Which decisions [`Store::recent_decisions`] lists. Every field set narrows the list; the
/// default lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionFilter {
    /// The model chosen, or the one that answered.
    pub model: Option<String>,
    pub domain: Option<String>,
    pub language: Option<String>,
    pub complexity: Option<String>,
    pub source: Option<DecisionSource>,
    pub status: Option<StatusFilter>,
    /// Received at or after this time.
    pub since_ms: Option<i64>,
    /// Received strictly before this time.
    pub until_ms: Option<i64>,
    /// Only decisions listed after this one: pass the [`DecisionView::cursor`] of the last
    /// decision of one page to get the next.
    pub page_after: Option<Cursor>,
}

/// A position in the newest-first listing of decisions. Ordering by time alone would skip
/// decisions that share a millisecond across a page boundary, so the id breaks ties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub received_at_ms: i64,
    pub id: String,
}

impl DecisionView {
    /// Where this decision sits in the listing, for [`DecisionFilter::page_after`].
    pub fn cursor(&self) -> Cursor {
        Cursor { received_at_ms: self.request.received_at_ms, id: self.request.id.clone() }
    }
}

/// Filters decisions by how they ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Finished with this status.
    Finished(OutcomeStatus),
    /// Not finished (no outcome stored yet).
    Pending,
}

const DECISION_COLUMNS: &str = "SELECT r.id, r.received_at, r.api, r.requested_model, \
    r.profile, CASE WHEN r.stream THEN 1 ELSE 0 END AS stream, r.prompt_kind, r.prompt, \
    r.message_count, r.features, r.language, r.domain, r.complexity, r.chosen_model, \
    r.source, r.reason, r.ranking, r.decision_us, \
    r.finished_at, r.status, r.http_status, r.model AS o_model, r.deployment, r.latency_ms, \
    r.ttft_ms, r.input_tokens, r.output_tokens, r.cost_usd, r.error_kind, r.error_message, \
    r.attempts, \
    f.decision_id AS f_decision_id, f.created_at AS f_created_at, f.score, f.rating, \
    f.comment \
    FROM requests r \
    LEFT JOIN feedback f ON f.decision_id = r.id";

/// Rows that hold a request: a row holds only an outcome when the outcome was stored before
/// its request (or without one), and there is no decision to show for it.
const HOLDS_A_REQUEST: &str = "r.received_at IS NOT NULL";

impl Store {
    /// The request with this decision id, with its outcome and feedback if any.
    pub async fn decision(&self, id: &str) -> Result<Option<DecisionView>, StoreError> {
        let mut statement = Statement::new(DECISION_COLUMNS);
        let id = statement.text(id);
        statement.push(&format!(" WHERE r.id = {id} AND {HOLDS_A_REQUEST}"));
        let row = statement.query().fetch_optional(&self.pool).await?;
        row.map(|row| decision_from_row(&row)).transpose()
    }

    /// The most recent decisions that pass `filter`, newest first, at most `limit` (capped
    /// at [`MAX_LIMIT`]).
    pub async fn recent_decisions(
        &self,
        filter: &DecisionFilter,
        limit: u32,
    ) -> Result<Vec<DecisionView>, StoreError> {
        let mut statement = Statement::new(DECISION_COLUMNS);
        let mut conditions = Conditions::default();
        conditions.add(HOLDS_A_REQUEST.to_owned());
        if let Some(model) = &filter.model {
            let model = statement.text(model);
            conditions.add(format!("(r.chosen_model = {model} OR r.model = {model})"));
        }
        for (column, value) in [
            ("r.domain", &filter.domain),
            ("r.language", &filter.language),
            ("r.complexity", &filter.complexity),
        ] {
            if let Some(value) = value {
                conditions.add(format!("{column} = {}", statement.text(value)));
            }
        }
        if let Some(source) = filter.source {
            conditions.add(format!("r.source = {}", statement.text(source.as_str())));
        }
        match filter.status {
            Some(StatusFilter::Finished(status)) => {
                conditions.add(format!("r.status = {}", statement.text(status.as_str())));
            }
            Some(StatusFilter::Pending) => conditions.add("r.finished_at IS NULL".to_owned()),
            None => {}
        }
        if let Some(since) = filter.since_ms {
            conditions.add(format!("r.received_at >= {}", statement.int(since)));
        }
        if let Some(until) = filter.until_ms {
            conditions.add(format!("r.received_at < {}", statement.int(until)));
        }
        if let Some(cursor) = &filter.page_after {
            let at = statement.int(cursor.received_at_ms);
            let id = statement.text(&cursor.id);
            conditions
                .add(format!("(r.received_at < {at} OR (r.received_at = {at} AND r.id < {id}))"));
        }
        conditions.write_to(&mut statement);
        let limit = statement.int(i64::from(limit.min(MAX_LIMIT)));
        statement.push(&format!(" ORDER BY r.received_at DESC, r.id DESC LIMIT {limit}"));
        let rows = statement.query().fetch_all(&self.pool).await?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The most recent feedback, newest first, with the context of the decision it is about.
    pub async fn recent_feedback(&self, limit: u32) -> Result<Vec<FeedbackView>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.decision_id AS f_decision_id, f.created_at AS f_created_at, f.score, \
             f.rating, f.comment, COALESCE(r.model, r.chosen_model) AS model, r.language, \
             r.domain \
             FROM feedback f \
             LEFT JOIN requests r ON r.id = f.decision_id \
             ORDER BY f.created_at DESC, f.decision_id DESC LIMIT $1",
        )
        .bind(i64::from(limit.min(MAX_LIMIT)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FeedbackView {
                    feedback: feedback_from_row(row)?,
                    model: get_opt_string(row, "model")?,
                    language: get_opt_string(row, "language")?,
                    domain: get_opt_string(row, "domain")?,
                })
            })
            .collect()
    }

    /// The most recent audit log entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, actor, action, target, detail FROM audit_log \
             ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit.min(MAX_LIMIT)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: get_i64(row, "id")?,
                    record: AuditRecord {
                        created_at_ms: get_i64(row, "created_at")?,
                        actor: get_string(row, "actor")?,
                        action: get_string(row, "action")?,
                        target: get_opt_string(row, "target")?,
                        detail: get_opt_string(row, "detail")?,
                    },
                })
            })
            .collect()
    }
}

fn decision_from_row(row: &AnyRow) -> Result<DecisionView, StoreError> {
    let request = request_from_row(row)?;
    // The outcome's part is there exactly when its time is.
    let outcome = match get_opt_i64(row, "finished_at")? {
        Some(_) => Some(outcome_from_row(row, request.id.clone())?),
        None => None,
    };
    let feedback = match get_opt_string(row, "f_decision_id")? {
        Some(_) => Some(feedback_from_row(row)?),
        None => None,
    };
    Ok(DecisionView { request, outcome, feedback })
}

fn request_from_row(row: &AnyRow) -> Result<RequestRecord, StoreError> {
    let prompt_kind = get_string(row, "prompt_kind")?;
    let prompt = StoredPrompt::from_parts(&prompt_kind, get_opt_string(row, "prompt")?)
        .ok_or(StoreError::Corrupt { column: "prompt_kind", value: prompt_kind })?;
    Ok(RequestRecord {
        id: get_string(row, "id")?,
        received_at_ms: get_i64(row, "received_at")?,
        api: get_word(row, "api", Api::parse)?,
        requested_model: get_string(row, "requested_model")?,
        profile: get_opt_string(row, "profile")?,
        stream: get_i64(row, "stream")? != 0,
        prompt,
        message_count: from_db(get_i64(row, "message_count")?, "message_count")?,
        features_json: get_string(row, "features")?,
        language: get_opt_string(row, "language")?,
        domain: get_opt_string(row, "domain")?,
        complexity: get_opt_string(row, "complexity")?,
        chosen_model: get_string(row, "chosen_model")?,
        source: get_word(row, "source", DecisionSource::parse)?,
        reason: get_string(row, "reason")?,
        ranking_json: get_string(row, "ranking")?,
        decision_us: get_u64(row, "decision_us")?,
    })
}

fn outcome_from_row(row: &AnyRow, request_id: String) -> Result<OutcomeRecord, StoreError> {
    let attempts = get_string(row, "attempts")?;
    let attempts: Vec<Attempt> = serde_json::from_str(&attempts)
        .map_err(|_| StoreError::Corrupt { column: "attempts", value: attempts })?;
    Ok(OutcomeRecord {
        request_id,
        finished_at_ms: get_i64(row, "finished_at")?,
        status: get_word(row, "status", OutcomeStatus::parse)?,
        http_status: from_db(get_i64(row, "http_status")?, "http_status")?,
        model: get_opt_string(row, "o_model")?,
        deployment: get_opt_string(row, "deployment")?,
        latency_ms: get_u64(row, "latency_ms")?,
        ttft_ms: get_opt_u64(row, "ttft_ms")?,
        input_tokens: get_u64(row, "input_tokens")?,
        output_tokens: get_u64(row, "output_tokens")?,
        cost_usd: get_f64(row, "cost_usd")?,
        error_kind: get_opt_string(row, "error_kind")?,
        error_message: get_opt_string(row, "error_message")?,
        attempts,
    })
}

/// Reads the feedback columns, aliased `f_decision_id`, `f_created_at`, `score`, `rating`,
/// `comment`.
fn feedback_from_row(row: &AnyRow) -> Result<FeedbackRecord, StoreError> {
    let score = get_f64(row, "score")?;
    let rating = match get_opt_i64(row, "rating")? {
        Some(stars) => Some(
            u8::try_from(stars)
                .ok()
                .and_then(Rating::new)
                .ok_or(StoreError::Corrupt { column: "rating", value: stars.to_string() })?,
        ),
        None => None,
    };
    Ok(FeedbackRecord {
        decision_id: get_string(row, "f_decision_id")?,
        created_at_ms: get_i64(row, "f_created_at")?,
        score: Score::new(score)
            .ok_or(StoreError::Corrupt { column: "score", value: score.to_string() })?,
        rating,
        comment: get_opt_string(row, "comment")?,
    })
}
