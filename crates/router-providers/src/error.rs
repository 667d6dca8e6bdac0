//! Why an upstream call failed, typed so that dispatch can decide what to do about it.

use std::time::Duration;

/// The phase of a call a timeout hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    /// No response head, or no first stream event, within the first-byte timeout.
    FirstByte,
    /// The whole call (or, streaming, the gap between two chunks) took too long.
    Total,
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
    /// The upstream answered something that is not its format.
    #[error("upstream sent an invalid response: {message}")]
    Protocol { message: String },
    /// A stream ended or broke before it finished.
    #[error("upstream stream broke: {message}")]
    StreamBroken { message: String },
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
            || matches!(self, UpstreamError::Auth { .. } | UpstreamError::ContextTooLong { .. })
    }

    /// Counts against the deployment's health (a bad request is the client's fault).
    pub fn counts_against_deployment(&self) -> bool {
        !matches!(self, UpstreamError::BadRequest { .. } | UpstreamError::ContextTooLong { .. })
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
            UpstreamError::Protocol { .. } => "protocol",
            UpstreamError::StreamBroken { .. } => "stream_broken",
        }
    }
}
