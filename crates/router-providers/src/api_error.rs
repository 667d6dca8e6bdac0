//! Errors the gateway returns to its own clients, independent of the format they are
//! rendered in (`openai::error_body`, `anthropic::error_body` and their stream variants).

use std::time::Duration;

use crate::error::{TimeoutPhase, UpstreamError};

/// A client's request body that cannot be accepted, with a message that says what to fix.
///
/// The message is worded the way the API the client speaks words it, field name included,
/// so it can be shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: String,
    /// The offending field, as a path into the body (`messages[2].role` for OpenAI,
    /// `messages.2.role` for Anthropic).
    pub param: Option<String>,
    /// A short machine-readable reason (`missing_required_parameter`, `invalid_type`, ...).
    pub code: Option<String>,
}

impl RequestError {
    pub fn new(message: impl Into<String>) -> Self {
        RequestError { message: message.into(), param: None, code: None }
    }
}

/// What kind of failure an [`ApiError`] reports; each wire format names it its own way and
/// each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 400: the request is malformed or asks for something that cannot be done.
    InvalidRequest,
    /// 401: missing or wrong gateway key.
    Authentication,
    /// 403: the key may not do this.
    PermissionDenied,
    /// 404: no such model or route.
    NotFound,
    /// 413: the body is over the size limit.
    RequestTooLarge,
    /// 429: a rate limit or budget is exhausted.
    RateLimited,
    /// 503 (OpenAI) / 529 (Anthropic): no upstream can take the request right now.
    Overloaded,
    /// 502: the upstream failed or answered something unusable.
    Upstream,
    /// 504: the upstream did not answer in time.
    Timeout,
    /// 500: the gateway itself failed.
    Internal,
}

/// An error to send to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Sent as `Retry-After` by the gateway when set.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), param: None, code: None, retry_after: None }
    }

    /// The error a client sees when the upstream that was to answer it failed (after any
    /// failover), worded so that it says what happened without leaking configuration.
    pub fn from_upstream(error: &UpstreamError) -> Self {
        let (kind, code) = match error {
            UpstreamError::Auth { .. } => (ApiErrorKind::Upstream, "upstream_auth_failed"),
            UpstreamError::RateLimited { .. } => (ApiErrorKind::RateLimited, "rate_limit_exceeded"),
            UpstreamError::Overloaded { .. } => (ApiErrorKind::Overloaded, "overloaded"),
            UpstreamError::BadRequest { .. } => (ApiErrorKind::InvalidRequest, "invalid_request"),
            UpstreamError::ContextTooLong { .. } => {
                (ApiErrorKind::InvalidRequest, "context_length_exceeded")
            }
            UpstreamError::Server { .. } => (ApiErrorKind::Upstream, "upstream_error"),
            UpstreamError::Timeout { .. } => (ApiErrorKind::Timeout, "upstream_timeout"),
            UpstreamError::Connect { .. } => (ApiErrorKind::Upstream, "upstream_unreachable"),
            UpstreamError::NoDescriptors { .. } => (ApiErrorKind::Overloaded, "gateway_overloaded"),
            UpstreamError::Protocol { .. } => (ApiErrorKind::Upstream, "upstream_protocol_error"),
            UpstreamError::StreamBroken { .. } => {
                (ApiErrorKind::Upstream, "upstream_stream_broken")
            }
            UpstreamError::Unsupported { .. } => (ApiErrorKind::InvalidRequest, "unsupported"),
        };
        let message = match error {
            // The upstream's own words about credentials describe the gateway's key, which is
            // none of the client's business.
            UpstreamError::Auth { status, .. } => {
                format!("the upstream provider rejected the gateway's credentials ({status})")
            }
            UpstreamError::Timeout { phase } => match phase {
                TimeoutPhase::Connect => "could not connect to the upstream provider in time",
                TimeoutPhase::FirstByte => "the upstream provider did not start answering in time",
                TimeoutPhase::Total => "the upstream provider did not finish answering in time",
                TimeoutPhase::Idle => "the upstream provider stopped sending its answer",
            }
            .to_owned(),
            other => other.to_string(),
        };
        ApiError {
            kind,
            message,
            param: None,
            code: Some(code.to_owned()),
            retry_after: error.retry_after(),
        }
    }

    /// The HTTP status for this error in the OpenAI-compatible API.
    pub fn status(&self) -> u16 {
        match self.kind {
            ApiErrorKind::InvalidRequest => 400,
            ApiErrorKind::Authentication => 401,
            ApiErrorKind::PermissionDenied => 403,
            ApiErrorKind::NotFound => 404,
            ApiErrorKind::RequestTooLarge => 413,
            ApiErrorKind::RateLimited => 429,
            ApiErrorKind::Overloaded => 503,
            ApiErrorKind::Upstream => 502,
            ApiErrorKind::Timeout => 504,
            ApiErrorKind::Internal => 500,
        }
    }

    /// The HTTP status for this error in the Anthropic-compatible API, which reports
    /// overload as 529.
    pub fn anthropic_status(&self) -> u16 {
        match self.kind {
            ApiErrorKind::Overloaded => 529,
            _ => self.status(),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        ApiError {
            kind: ApiErrorKind::InvalidRequest,
            message: error.message,
            param: error.param,
            code: error.code,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_auth_failure_does_not_leak_the_providers_words() {
        let error = UpstreamError::Auth {
            status: 401,
            message: "Incorrect API key provided: sk-abc***xyz".into(),
        };
        let api = ApiError::from_upstream(&error);
        assert_eq!(api.kind, ApiErrorKind::Upstream);
        assert_eq!(api.status(), 502);
        assert!(!api.message.contains("sk-abc"), "{}", api.message);
    }

    #[test]
    fn upstream_errors_map_to_client_statuses() {
        let cases = [
            (
                UpstreamError::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                    message: "slow down".into(),
                },
                429,
                429,
            ),
            (UpstreamError::Overloaded { retry_after: None, message: "busy".into() }, 503, 529),
            (UpstreamError::ContextTooLong { message: "too long".into() }, 400, 400),
            (UpstreamError::Timeout { phase: TimeoutPhase::FirstByte }, 504, 504),
            (UpstreamError::Connect { message: "refused".into() }, 502, 502),
            (UpstreamError::Unsupported { message: "image url".into() }, 400, 400),
        ];
        for (error, openai, anthropic) in cases {
            let api = ApiError::from_upstream(&error);
            assert_eq!(api.status(), openai, "{error:?}");
            assert_eq!(api.anthropic_status(), anthropic, "{error:?}");
            assert_eq!(api.retry_after, error.retry_after());
        }
    }

    #[test]
    fn context_too_long_keeps_the_openai_code() {
        let api = ApiError::from_upstream(&UpstreamError::ContextTooLong {
            message: "maximum context length is 8192 tokens".into(),
        });
        assert_eq!(api.code.as_deref(), Some("context_length_exceeded"));
        assert!(api.message.contains("8192"));
    }
}
