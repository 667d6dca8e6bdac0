//! Why an upstream call failed, typed so that dispatch can decide what to do about it.

use std::time::Duration;

/// The phase of a call a timeout hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    /// No response head, or no first output of a stream, within the first-byte timeout.
    FirstByte,
    /// The whole call took longer than the total timeout.
    Total,
    /// A stream that had started went quiet for longer than the idle timeout.
    Idle,
}

/// A failed upstream call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// 401/403: the key is wrong or lacks permission. Not retried on this deployment.
    #[error("upstream rejected the credentials ({status}): {message}")]
    Auth { status: u16, message: String },
    /// 429.
    #[error("upstream rate limit: {message}")]
    RateLimited { retry_after: Option<Duration>, message: String },
    /// 529, or 503 with an overload message.
    #[error("upstream overloaded: {message}")]
    Overloaded { retry_after: Option<Duration>, message: String },
    /// 400/404/422 that is not about context length: the request itself is wrong, so no
    /// other deployment will take it either.
    #[error("upstream refused the request ({status}): {message}")]
    BadRequest { status: u16, message: String },
    /// The prompt does not fit the model's context window.
    #[error("prompt too long for the model: {message}")]
    ContextTooLong { message: String },
    /// 5xx.
    #[error("upstream server error ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("upstream timed out ({phase:?})")]
    Timeout { phase: TimeoutPhase },
    /// Nothing listens, DNS failed, TLS failed, the connection was reset before a response.
    #[error("could not connect to upstream: {message}")]
    Connect { message: String },
    /// The gateway itself could not open a connection: the process or the system is out of
    /// file descriptors. Nothing reached the upstream, so it says nothing about it.
    #[error("the gateway has no connection to spare for the upstream: {message}")]
    NoDescriptors { message: String },
    /// The upstream answered something that is not its format.
    #[error("upstream sent an invalid response: {message}")]
    Protocol { message: String },
    /// A stream ended or broke before it finished.
    #[error("upstream stream broke: {message}")]
    StreamBroken { message: String },
    /// The request cannot be expressed in this upstream's format (an image URL for an API
    /// that takes only inline images, a forced tool call for one that cannot force it). No
    /// request was sent; another model may take it.
    #[error("request cannot be sent to this upstream: {message}")]
    Unsupported { message: String },
}

impl UpstreamError {
    /// Worth trying again (on this deployment after a backoff, or on another).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Overloaded { .. }
                | UpstreamError::Server { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Connect { .. }
                | UpstreamError::Protocol { .. }
                | UpstreamError::StreamBroken { .. }
        )
    }

    /// Worth sending to a different model (a smaller model may have a smaller window, a
    /// different provider other credentials). Bad requests are the client's to fix.
    pub fn is_failover(&self) -> bool {
        self.is_retryable()
            || matches!(
                self,
                UpstreamError::Auth { .. }
                    | UpstreamError::ContextTooLong { .. }
                    | UpstreamError::Unsupported { .. }
                    // A deployment with an idle pooled connection can still be called.
                    | UpstreamError::NoDescriptors { .. }
            )
    }

    /// Counts against the deployment's health (a bad request is the client's fault, and an
    /// untranslatable one never reached the deployment, nor did a call the gateway had no
    /// socket for).
    pub fn counts_against_deployment(&self) -> bool {
        !matches!(
            self,
            UpstreamError::BadRequest { .. }
                | UpstreamError::ContextTooLong { .. }
                | UpstreamError::Unsupported { .. }
                | UpstreamError::NoDescriptors { .. }
        )
    }

    /// How long the upstream asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after, .. }
            | UpstreamError::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short machine-readable kind, for records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Auth { .. } => "auth",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Overloaded { .. } => "overloaded",
            UpstreamError::BadRequest { .. } => "bad_request",
            UpstreamError::ContextTooLong { .. } => "context_too_long",
            UpstreamError::Server { .. } => "server_error",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::NoDescriptors { .. } => "no_descriptors",
            UpstreamError::Protocol { .. } => "protocol",
            UpstreamError::StreamBroken { .. } => "stream_broken",
            UpstreamError::Unsupported { .. } => "unsupported",
        }
    }
}

/// Whether a provider's error says the prompt does not fit the model's context window.
/// Providers say it in words more often than in codes: OpenAI and OpenAI-compatible servers
/// ("maximum context length", code `context_length_exceeded`), Anthropic ("prompt is too
/// long", "exceed context limit"), Ollama ("the input length exceeds the context length").
pub(crate) fn says_context_too_long(code: Option<&str>, message: &str) -> bool {
    if code == Some("context_length_exceeded") {
        return true;
    }
    let message = message.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "context window",
        "context limit",
        "maximum context",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The error a provider reports inside a stream (an Anthropic `error` event, an OpenAI
/// chunk with an `error` object, an Ollama line with `error`), typed by the provider's own
/// error type where it gives one.
pub(crate) fn from_error_event(error_type: Option<&str>, message: String) -> UpstreamError {
    if says_context_too_long(error_type, &message) {
        return UpstreamError::ContextTooLong { message };
    }
    match error_type {
        Some("overloaded_error" | "server_overloaded" | "overloaded") => {
            UpstreamError::Overloaded { retry_after: None, message }
        }
        Some("rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens") => {
            UpstreamError::RateLimited { retry_after: None, message }
        }
        Some("authentication_error" | "invalid_api_key") => {
            UpstreamError::Auth { status: 401, message }
        }
        Some("permission_error") => UpstreamError::Auth { status: 403, message },
        Some("invalid_request_error" | "not_found_error") => {
            UpstreamError::BadRequest { status: 400, message }
        }
        _ => UpstreamError::Server { status: 500, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_context_errors_of_every_provider() {
        for message in [
            "This model's maximum context length is 8192 tokens. However, you requested 9000",
            "prompt is too long: 210000 tokens > 200000 maximum",
            "input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000",
            "the input length exceeds the context length",
        ] {
            assert!(says_context_too_long(None, message), "{message}");
        }
        assert!(says_context_too_long(Some("context_length_exceeded"), "whatever"));
        assert!(!says_context_too_long(Some("invalid_value"), "temperature must be <= 2"));
    }

    #[test]
    fn error_events_are_typed_by_the_providers_type() {
        let cases = [
            (Some("overloaded_error"), "overloaded"),
            (Some("rate_limit_error"), "rate_limited"),
            (Some("authentication_error"), "auth"),
            (Some("invalid_request_error"), "bad_request"),
            (Some("api_error"), "server_error"),
            (None, "server_error"),
        ];
        for (error_type, kind) in cases {
            assert_eq!(from_error_event(error_type, "x".into()).kind(), kind, "{error_type:?}");
        }
        let long = from_error_event(Some("invalid_request_error"), "prompt is too long".into());
        assert_eq!(long.kind(), "context_too_long");
    }

    #[test]
    fn failover_and_health_rules() {
        let bad = UpstreamError::BadRequest { status: 400, message: String::new() };
        assert!(!bad.is_failover() && !bad.counts_against_deployment());
        let unsupported = UpstreamError::Unsupported { message: String::new() };
        assert!(unsupported.is_failover() && !unsupported.is_retryable());
        assert!(!unsupported.counts_against_deployment());
        let idle = UpstreamError::Timeout { phase: TimeoutPhase::Idle };
        assert!(idle.is_retryable() && idle.counts_against_deployment());
        let local = UpstreamError::NoDescriptors { message: String::new() };
        assert!(local.is_failover() && !local.is_retryable());
        assert!(!local.counts_against_deployment());
    }
}
