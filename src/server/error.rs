//! What can go wrong talking to the server, sorted the way the daemon must react: retry or
//! not, how long to wait, and whether the request may have been acted on.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{HeaderMap, DATE, RETRY_AFTER};

use crate::html::html_to_text;

/// A request to the server failed. The token never appears in it: it only ever travels in the
/// `Authorization` header, never in a URL, a body or a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {kind}")]
pub struct ServerError {
    endpoint: String,
    kind: ErrorKind,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// No connection could be opened (refused, DNS, TLS handshake, connect timeout): the
    /// request surely never reached the server.
    #[error("cannot connect to the server: {detail}")]
    Connect { detail: String },
    /// No complete answer within the request timeout; the request may have arrived.
    #[error("the server did not answer within {} s", after.as_secs_f64())]
    Timeout { after: Duration },
    /// The connection broke after the request was (maybe) sent and before the answer was read.
    #[error("the connection broke before the server's answer arrived: {detail}")]
    ConnectionLost { detail: String },
    /// HTTP 429. `retry_after` comes from `Retry-After` or `X-RateLimit-Reset`.
    #[error("the server's rate limit is reached (HTTP 429){}", wait_text(*retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Any other answer that is not a success, with the server's own `error` message.
    #[error("the server answered HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        /// From `Retry-After` (a 503 from a throttle sends one).
        retry_after: Option<Duration>,
    },
    /// A success status whose body is not what the API promises (or is too large). The
    /// request was acted on.
    #[error("the server's answer (HTTP {status}) could not be read: {detail}")]
    InvalidResponse { status: u16, detail: String },
    /// The request could not be built (a header value with a newline, say); resending the same
    /// thing cannot help.
    #[error("the request could not be built: {detail}")]
    InvalidRequest { detail: String },
    /// A media file could not be read.
    #[error("cannot read {}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    /// Uploaded media was still being processed when we stopped waiting.
    #[error("media {media_id} was still being processed after {} s", waited.as_secs())]
    MediaNotReady { media_id: String, waited: Duration },
}

fn wait_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; retry in {} s", wait.as_secs_f64().ceil()),
        None => String::new(),
    }
}

impl ServerError {
    pub(crate) fn new(endpoint: impl Into<String>, kind: ErrorKind) -> Self {
        ServerError {
            endpoint: endpoint.into(),
            kind,
        }
    }

    /// What failed: the method and path, such as `POST /api/v1/statuses` (never a query).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the same request may succeed later: network trouble, timeouts, 5xx, 429, a
    /// garbled success. Other 4xx (422, GoToSocial's 400 for an over-long status, 401, 404)
    /// are permanent: resending the same request gets the same answer.
    pub fn retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Connect { .. }
            | ErrorKind::Timeout { .. }
            | ErrorKind::ConnectionLost { .. }
            | ErrorKind::RateLimited { .. }
            | ErrorKind::InvalidResponse { .. }
            | ErrorKind::MediaNotReady { .. } => true,
            ErrorKind::Http { status, .. } => *status >= 500 || *status == 408,
            ErrorKind::InvalidRequest { .. } | ErrorKind::File { .. } => false,
        }
    }

    /// What sending a status (a post's part or a reply) should do after this failure. Only
    /// the server's verdict that the status itself is invalid fails it; a refused token, a
    /// redirect, a 404, a 5xx or a rate limit is the daemon's condition, never a verdict on
    /// the post (a 404 or 3xx from a misconfigured proxy would otherwise fail every post).
    pub fn disposition(&self) -> Disposition {
        match &self.kind {
            ErrorKind::Http { status, .. } => match status {
                // Mastodon answers 422 for an invalid status; GoToSocial 400 with its
                // validation message (internal/processing/status/common.go); 413/415 are
                // the server refusing a media file.
                400 | 413 | 415 | 422 => Disposition::Invalid,
                401 | 403 => Disposition::TokenRefused,
                _ => Disposition::Retry,
            },
            ErrorKind::InvalidRequest { .. } | ErrorKind::File { .. } => Disposition::Invalid,
            ErrorKind::Connect { .. }
            | ErrorKind::Timeout { .. }
            | ErrorKind::ConnectionLost { .. }
            | ErrorKind::RateLimited { .. }
            | ErrorKind::InvalidResponse { .. }
            | ErrorKind::MediaNotReady { .. } => Disposition::Retry,
        }
    }

    /// Whether the request may have reached the server and been acted on: a timeout, a
    /// connection lost before the answer, a 5xx (often a proxy giving up on a busy server that
    /// goes on working), a success we could not read. Before resending a status after such a
    /// failure, look for it in [`Server::own_statuses`](super::Server::own_statuses).
    /// False when it surely was not: no connection, 429, 4xx.
    pub fn uncertain(&self) -> bool {
        match &self.kind {
            ErrorKind::Timeout { .. }
            | ErrorKind::ConnectionLost { .. }
            | ErrorKind::InvalidResponse { .. } => true,
            ErrorKind::Http { status, .. } => *status >= 500,
            ErrorKind::Connect { .. }
            | ErrorKind::RateLimited { .. }
            | ErrorKind::InvalidRequest { .. }
            | ErrorKind::File { .. }
            | ErrorKind::MediaNotReady { .. } => false,
        }
    }

    /// How long the server asked us to wait, when it said so (429, or a 503 with
    /// `Retry-After`). `None`: use your own backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ErrorKind::RateLimited { retry_after } | ErrorKind::Http { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::RateLimited { .. } => Some(429),
            ErrorKind::Http { status, .. } | ErrorKind::InvalidResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The server's own explanation of a rejection (its JSON `error`), such as
    /// `Validation failed: Text character limit of 500 exceeded`.
    pub fn server_message(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Http { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// What to do after a status could not be sent ([`ServerError::disposition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The server judged the status (or its media) invalid: resending it cannot help, so this
    /// one post (or reply) fails.
    Invalid,
    /// The server refused the token (401, 403): nothing can be sent until it is fixed; no
    /// post is failed for it.
    TokenRefused,
    /// Anything else: try again later, with backoff.
    Retry,
}

/// Connecting failed: the daemon exits 78 on [`ConnectError::Unauthorized`], retries with
/// backoff when [`ConnectError::retryable`], and exits 1 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the token (401 or 403 from `verify_credentials`).
    #[error(
        "the server at {url} refused the access token (HTTP {status}: {server_message}); \
         run `perennial login --server {url}` to get a new token, or check that the token is \
         complete and was granted the scopes `profile` (or `read:accounts`), `read:statuses`, \
         `read:notifications`, `write:statuses` and `write:media`"
    )]
    Unauthorized {
        url: String,
        status: u16,
        server_message: String,
    },
    /// The server could not be reached or was too busy (network, timeout, 5xx, 429): try again.
    #[error("cannot reach the server at {url}: {error}")]
    Unreachable { url: String, error: ServerError },
    /// The server answered, but not as a Mastodon-compatible server does (404 for
    /// `verify_credentials`, an account we cannot read, a redirect).
    #[error("the server at {url} does not answer as a Mastodon-compatible server: {error}")]
    Incompatible { url: String, error: ServerError },
    /// `[server] url` is not an http(s) URL.
    #[error("the server URL {url:?} cannot be used: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl ConnectError {
    /// Whether connecting again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, ConnectError::Unreachable { .. })
    }

    /// How long the server asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectError::Unreachable { error, .. } => error.retry_after(),
            _ => None,
        }
    }

    /// Sorts a failure of `verify_credentials`.
    pub(crate) fn from_credentials_error(url: &str, error: ServerError) -> Self {
        let url = url.to_string();
        match error.kind() {
            ErrorKind::Http {
                status: status @ (401 | 403),
                message,
                ..
            } => ConnectError::Unauthorized {
                url,
                status: *status,
                server_message: message.clone(),
            },
            _ => ConnectError::from_server_error(url, error),
        }
    }

    /// Any other failure while connecting: retryable ones are `Unreachable`, except a
    /// success we cannot read, which will read no better next time.
    pub(crate) fn from_server_error(url: String, error: ServerError) -> Self {
        let garbled = matches!(error.kind(), ErrorKind::InvalidResponse { .. });
        if error.retryable() && !garbled {
            ConnectError::Unreachable { url, error }
        } else {
            ConnectError::Incompatible { url, error }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sorting failures.

/// Sorts a reqwest failure. `timeout` is the one the request had, for the message.
pub(crate) fn kind_from_reqwest(error: reqwest::Error, timeout: Duration) -> ErrorKind {
    // The URL is the server's and a path, never the token; it is dropped anyway because the
    // endpoint already says which request failed.
    let error = error.without_url();
    if error.is_builder() {
        ErrorKind::InvalidRequest {
            detail: chain(&error),
        }
    } else if error.is_connect() {
        // Checked before `is_timeout`: a connect timeout is both, and nothing was sent.
        ErrorKind::Connect {
            detail: chain(&error),
        }
    } else if error.is_timeout() {
        ErrorKind::Timeout { after: timeout }
    } else if error.is_decode() {
        ErrorKind::InvalidResponse {
            status: error.status().map_or(0, |s| s.as_u16()),
            detail: chain(&error),
        }
    } else {
        // Sending failed after the connection was up, or the body broke off: the server may
        // have read the whole request.
        ErrorKind::ConnectionLost {
            detail: chain(&error),
        }
    }
}

/// Sorts a megalodon failure.
pub(crate) fn kind_from_megalodon(error: megalodon::error::Error, timeout: Duration) -> ErrorKind {
    use megalodon::error::Error as M;
    match error {
        M::RequestError(error) => kind_from_reqwest(error, timeout),
        M::OwnError(own) => match own.status {
            Some(status) => {
                let headers = own.header.unwrap_or_default();
                kind_from_status(status, &headers, own.message.as_bytes(), Timestamp::now())
            }
            None => ErrorKind::InvalidResponse {
                status: 0,
                detail: format!("{}: {}", own.kind, own.message),
            },
        },
        M::JsonError(error) => ErrorKind::InvalidResponse {
            status: 0,
            detail: error.to_string(),
        },
        M::ParseError(error) => ErrorKind::InvalidRequest {
            detail: error.to_string(),
        },
        M::StandardError(error) => ErrorKind::ConnectionLost {
            detail: error.to_string(),
        },
        M::WebSocketError(error) => ErrorKind::ConnectionLost {
            detail: error.to_string(),
        },
    }
}

/// Sorts an answer that is not a success. `now` is used when the answer has no `Date`.
pub(crate) fn kind_from_status(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> ErrorKind {
    if status == 429 {
        return ErrorKind::RateLimited {
            retry_after: rate_limit_wait(headers, now),
        };
    }
    let message = if (300..400).contains(&status) {
        let target = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("elsewhere");
        format!("it redirects to {target}; set [server] url to the server's own address")
    } else {
        server_message(status, body)
    };
    ErrorKind::Http {
        status,
        message,
        retry_after: retry_after_header(headers, now),
    }
}

/// The server's explanation: Mastodon and GoToSocial send `{"error": "..."}` (OAuth errors add
/// `error_description`); a proxy sends an HTML page, of which we keep a short plain text.
fn server_message(status: u16, body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = json.get("error").and_then(|v| v.as_str());
        let description = json.get("error_description").and_then(|v| v.as_str());
        match (error, description) {
            (Some(error), Some(description)) => return format!("{error}: {description}"),
            (Some(message), None) | (None, Some(message)) => return message.to_string(),
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = if text.trim_start().starts_with('<') {
        html_to_text(&text)
    } else {
        text.into_owned()
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no explanation")
            .to_string();
    }
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or an HTTP date) when present, else
/// `X-RateLimit-Reset` (an ISO 8601 time, which Mastodon and GoToSocial send) measured from the
/// answer's `Date` (the server's clock, so our clock's error does not matter), or from `now`.
pub(crate) fn rate_limit_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    if let Some(wait) = retry_after_header(headers, now) {
        return Some(wait);
    }
    let reset = header_str(headers, "x-ratelimit-reset")?;
    let reset: Timestamp = reset.trim().parse().ok()?;
    Some(duration_until(reset, server_now(headers, now)))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after_header(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = header_str(headers, RETRY_AFTER.as_str())?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(duration_until(at, server_now(headers, now)))
}

fn server_now(headers: &HeaderMap, now: Timestamp) -> Timestamp {
    header_str(headers, DATE.as_str())
        .and_then(parse_http_date)
        .unwrap_or(now)
}

fn parse_http_date(value: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value.trim())
        .ok()
}

fn duration_until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An error and its causes on one line, without repeats (reqwest and hyper nest the same
/// message at several levels).
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn retry_after_in_seconds_wins() {
        let h = headers(&[
            ("retry-after", "30"),
            ("x-ratelimit-reset", "2026-03-01T12:05:00.000000Z"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_as_http_date_is_measured_from_the_date_header() {
        let h = headers(&[
            ("retry-after", "Sun, 01 Mar 2026 10:01:30 GMT"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(90)));
    }

    #[test]
    fn rate_limit_reset_is_measured_from_the_servers_clock() {
        // Our clock (`now`) is two hours off; the server's Date is what counts.
        let h = headers(&[
            ("x-ratelimit-reset", "2026-03-01T10:04:59.500000Z"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            rate_limit_wait(&h, now()),
            Some(Duration::from_millis(299_500))
        );
    }

    #[test]
    fn rate_limit_reset_without_date_is_measured_from_now() {
        let h = headers(&[("x-ratelimit-reset", "2026-03-01T12:01:00Z")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(60)));
        let past = headers(&[("x-ratelimit-reset", "2026-03-01T11:00:00Z")]);
        assert_eq!(rate_limit_wait(&past, now()), Some(Duration::ZERO));
    }

    #[test]
    fn unreadable_headers_give_no_wait() {
        for h in [
            headers(&[]),
            headers(&[("retry-after", "soon")]),
            headers(&[("x-ratelimit-reset", "tomorrow")]),
        ] {
            assert_eq!(rate_limit_wait(&h, now()), None);
        }
    }

    fn http(status: u16, body: &str) -> ServerError {
        ServerError::new(
            "POST /api/v1/statuses",
            kind_from_status(status, &HeaderMap::new(), body.as_bytes(), now()),
        )
    }

    #[test]
    fn statuses_are_sorted() {
        let mastodon_422 = http(
            422,
            r#"{"error":"Validation failed: Text character limit of 500 exceeded"}"#,
        );
        assert!(!mastodon_422.retryable());
        assert!(!mastodon_422.uncertain());
        assert_eq!(
            mastodon_422.server_message(),
            Some("Validation failed: Text character limit of 500 exceeded")
        );
        assert_eq!(
            mastodon_422.to_string(),
            "POST /api/v1/statuses: the server answered HTTP 422: Validation failed: Text character limit of 500 exceeded"
        );

        let internal = http(500, r#"{"error":"We're sorry, but something went wrong"}"#);
        assert!(internal.retryable() && internal.uncertain());

        let proxy = http(
            502,
            "<html><body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>",
        );
        assert!(proxy.retryable() && proxy.uncertain());
        assert_eq!(proxy.server_message(), Some("502 Bad Gateway nginx"));

        let empty = http(404, "");
        assert_eq!(empty.server_message(), Some("Not Found"));
        assert!(!empty.retryable());

        let oauth = http(
            401,
            r#"{"error":"invalid_token","error_description":"The access token is invalid"}"#,
        );
        assert_eq!(
            oauth.server_message(),
            Some("invalid_token: The access token is invalid")
        );

        let limited = http(429, r#"{"error":"Too many requests"}"#);
        assert!(limited.retryable() && !limited.uncertain());
        assert_eq!(limited.status(), Some(429));
    }

    #[test]
    fn long_html_pages_are_cut() {
        let page = format!("<p>{}</p>", "x ".repeat(1000));
        let message = server_message(503, page.as_bytes());
        assert_eq!(message.chars().count(), 301);
        assert!(message.ends_with('…'));
    }
}
