//! What can go wrong talking to the server, sorted the way the daemon must react: retry or
//! not, how long to wait, and whether the request may have been acted on.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{HeaderMap, DATE, RETRY_AFTER};

use crate::network::retry::MAX_SERVER_WAIT;
use crate::text::html::html_to_text;

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

impl ErrorKind {
    fn redact(self, redactor: &Redactor) -> ErrorKind {
        let r = |text: String| redactor.apply(text);
        match self {
            ErrorKind::Connect { detail } => ErrorKind::Connect { detail: r(detail) },
            ErrorKind::ConnectionLost { detail } => ErrorKind::ConnectionLost { detail: r(detail) },
            ErrorKind::Http {
                status,
                message,
                retry_after,
            } => ErrorKind::Http {
                status,
                message: r(message),
                retry_after,
            },
            ErrorKind::InvalidResponse { status, detail } => ErrorKind::InvalidResponse {
                status,
                detail: r(detail),
            },
            ErrorKind::InvalidRequest { detail } => ErrorKind::InvalidRequest { detail: r(detail) },
            ErrorKind::File { path, detail } => ErrorKind::File {
                path,
                detail: r(detail),
            },
            ErrorKind::MediaNotReady { media_id, waited } => ErrorKind::MediaNotReady {
                media_id: r(media_id),
                waited,
            },
            kind @ (ErrorKind::Timeout { .. } | ErrorKind::RateLimited { .. }) => kind,
        }
    }
}

/// What stands in for the token in a redacted text.
pub const REDACTED: &str = "[redacted]";

/// Replaces a secret, in the forms it may be echoed in, by [`REDACTED`].
pub(crate) struct Redactor {
    forms: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(secret: &str) -> Redactor {
        let mut forms = Vec::new();
        // An empty secret would "occur" everywhere.
        if !secret.is_empty() {
            forms.push(secret.to_string());
            let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            for encoded in [
                percent_encode(secret, false),
                percent_encode(secret, true),
                form,
            ] {
                if !forms.contains(&encoded) {
                    forms.push(encoded);
                }
            }
        }
        // The longest first, so that a form containing another is replaced whole.
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        Redactor { forms }
    }

    pub(crate) fn apply(&self, mut text: String) -> String {
        for form in &self.forms {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), REDACTED);
            }
        }
        text
    }
}

/// `text` percent-encoded as in a URL (RFC 3986 §2.1: everything but the unreserved
/// characters), with upper- or lower-case hex digits.
fn percent_encode(text: &str, lower: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else if lower {
            encoded.push_str(&format!("%{byte:02x}"));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
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
    /// Never more than [`MAX_SERVER_WAIT`]: a header saying "a billion seconds" (or an epoch
    /// sent as seconds) must not stop the bot for good.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ErrorKind::RateLimited { retry_after } | ErrorKind::Http { retry_after, .. } => {
                retry_after.map(|wait| wait.min(MAX_SERVER_WAIT))
            }
            _ => None,
        }
    }

    /// The same error with every occurrence of `secret` (the token: raw, percent-encoded and
    /// form-encoded) in its text replaced by [`REDACTED`]. A server or a proxy may echo the
    /// request's `Authorization` header in an error body, and this text reaches the journal
    /// and `state.json`.
    pub(crate) fn redact(self, secret: &str) -> ServerError {
        let redactor = Redactor::new(secret);
        ServerError {
            endpoint: redactor.apply(self.endpoint),
            kind: self.kind.redact(&redactor),
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

/// Connecting failed: the daemon exits 78 when [`ConnectError::is_configuration`], retries
/// with backoff when [`ConnectError::retryable`], and exits 1 otherwise.
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
    /// The token works but cannot read the account's own statuses (401 or 403 from
    /// `GET /api/v1/accounts/:id/statuses`): a token made by hand without `read:statuses`.
    /// Without that read a post whose answer was lost can never be verified, so it would
    /// stay pending for good.
    #[error(
        "the server at {url} refused to show the account's own statuses to this token \
         (HTTP {status}: {server_message}); the token needs the scope `read:statuses` (or \
         `read`): run `perennial login --server {url}` again to get a token with it"
    )]
    CannotReadOwnStatuses {
        url: String,
        status: u16,
        server_message: String,
    },
}

impl ConnectError {
    /// Whether the operator must fix the configuration (the token, its scopes, the URL)
    /// before connecting can succeed: the daemon exits 78 (`EX_CONFIG`) on these.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            ConnectError::Unauthorized { .. }
                | ConnectError::InvalidUrl { .. }
                | ConnectError::CannotReadOwnStatuses { .. }
        )
    }

    /// Sorts a failure of the own-statuses read at the end of connecting.
    pub(crate) fn from_own_statuses_error(url: &str, error: ServerError) -> Self {
        let url = url.to_string();
        match error.kind() {
            ErrorKind::Http {
                status: status @ (401 | 403),
                message,
                ..
            } => ConnectError::CannotReadOwnStatuses {
                url,
                status: *status,
                server_message: message.clone(),
            },
            _ => ConnectError::from_server_error(url, error),
        }
    }

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
/// `X-RateLimit-Reset` measured from the answer's `Date` (the server's clock, so our clock's
/// error does not matter), or from `now`. Mastodon sends the reset as ISO 8601 with
/// microseconds (`app/lib/rate_limiter.rb`, `config/initializers/rack_attack.rb`); GoToSocial
/// 0.19 as ISO 8601 in whole seconds (`2026-12-04T21:31:15.000Z`, from its
/// `internal/middleware/ratelimit.go`), the window's end cut down to the second, so a
/// whole-second reset gets one second more; its docs call it a unix timestamp, so a plain
/// number is read too: seconds from now, or an epoch (anything over an hour is "an hour").
/// Never more than [`MAX_SERVER_WAIT`], and never a panic, whatever the header says.
pub(crate) fn rate_limit_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    if let Some(wait) = retry_after_header(headers, now) {
        return Some(wait);
    }
    let reset = header_str(headers, "x-ratelimit-reset")?.trim();
    if let Some(seconds) = plain_seconds(reset) {
        return Some(seconds);
    }
    let reset: Timestamp = reset.parse().ok()?;
    // A reset in whole seconds is the window's end cut down to its second: a real
    // GoToSocial 0.19.2 said `04:31:24.000Z` and still answered 429 at 04:31:24.959. One more
    // second so that the retry does not land just before the true end.
    let reset = if reset.subsec_nanosecond() == 0 {
        reset
            .saturating_add(jiff::SignedDuration::from_secs(1))
            .ok()?
    } else {
        reset
    };
    Some(duration_until(reset, server_now(headers, now)))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), at most
/// [`MAX_SERVER_WAIT`].
fn retry_after_header(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = header_str(headers, RETRY_AFTER.as_str())?.trim();
    if let Some(seconds) = plain_seconds(value) {
        return Some(seconds);
    }
    let at = parse_http_date(value)?;
    Some(duration_until(at, server_now(headers, now)))
}

/// A header value that is a non-negative number of seconds (`120`, `1.5`, or digits too many
/// for any integer type), at most [`MAX_SERVER_WAIT`]; `None` for anything else (a negative
/// number, a date, garbage).
fn plain_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    // Too many digits for a u64 is surely more than an hour.
    let seconds = whole.parse::<u64>().unwrap_or(u64::MAX);
    if seconds >= MAX_SERVER_WAIT.as_secs() {
        return Some(MAX_SERVER_WAIT);
    }
    let millis = format!("{fraction:0<3}")[..3].parse::<u64>().unwrap_or(0);
    Some(Duration::from_secs(seconds) + Duration::from_millis(millis))
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

/// From `now` until `at`: zero when `at` is past, at most [`MAX_SERVER_WAIT`].
fn duration_until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now))
        .unwrap_or(Duration::ZERO)
        .min(MAX_SERVER_WAIT)
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
        let h = headers(&[("x-ratelimit-reset", "2026-03-01T12:01:00.250Z")]);
        assert_eq!(
            rate_limit_wait(&h, now()),
            Some(Duration::from_millis(60_250))
        );
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

    // Issue 14 item 2: no header makes the wait longer than an hour, or panics.

    #[test]
    fn a_huge_retry_after_is_an_hour_and_never_panics() {
        for value in [
            "1000000000000",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999",
            "1796354000",
            "3601",
        ] {
            let h = headers(&[("retry-after", value)]);
            assert_eq!(rate_limit_wait(&h, now()), Some(MAX_SERVER_WAIT), "{value}");
            let error = ServerError::new(
                "POST /api/v1/statuses",
                kind_from_status(503, &h, b"", now()),
            );
            assert_eq!(error.retry_after(), Some(MAX_SERVER_WAIT), "{value}");
        }
        let h = headers(&[("retry-after", "3599")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(3599)));
    }

    #[test]
    fn a_negative_or_garbage_retry_after_gives_no_wait() {
        for value in [
            "-5",
            "-1000000000000",
            "",
            "1e9",
            "0x10",
            "soon",
            "1.2.3",
            "NaN",
        ] {
            let h = headers(&[("retry-after", value)]);
            assert_eq!(rate_limit_wait(&h, now()), None, "{value:?}");
        }
        let h = headers(&[("retry-after", "1.5")]);
        assert_eq!(
            rate_limit_wait(&h, now()),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn a_far_retry_after_date_is_an_hour() {
        let h = headers(&[
            ("retry-after", "Wed, 01 Jan 9000 00:00:00 GMT"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(MAX_SERVER_WAIT));
    }

    #[test]
    fn gotosocials_whole_second_reset_is_measured_from_its_date() {
        // As a real GoToSocial 0.19.2 sends them: no fraction but `.000`, and no Retry-After.
        let h = headers(&[
            ("x-ratelimit-reset", "2026-03-01T10:00:52.000Z"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        // 52 s to the reset, and one more: the true end of the window lies within that second.
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(53)));
        let no_fraction = headers(&[
            ("x-ratelimit-reset", "2026-03-01T10:00:52Z"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            rate_limit_wait(&no_fraction, now()),
            Some(Duration::from_secs(53))
        );
        // The reset is this very second: the window ends within it, so 1 s.
        let same_second = headers(&[
            ("x-ratelimit-reset", "2026-03-01T10:00:00.000Z"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            rate_limit_wait(&same_second, now()),
            Some(Duration::from_secs(1))
        );
        // Mastodon's reset has a fraction: used as it is.
        let fraction = headers(&[
            ("x-ratelimit-reset", "2026-03-01T10:00:52.250000Z"),
            ("date", "Sun, 01 Mar 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            rate_limit_wait(&fraction, now()),
            Some(Duration::from_millis(52_250))
        );
    }

    #[test]
    fn a_far_rate_limit_reset_is_an_hour() {
        for reset in ["9000-01-01T00:00:00Z", "2026-03-02T12:00:00.000000Z"] {
            let h = headers(&[("x-ratelimit-reset", reset)]);
            assert_eq!(rate_limit_wait(&h, now()), Some(MAX_SERVER_WAIT), "{reset}");
        }
    }

    #[test]
    fn a_rate_limit_reset_as_a_number_is_seconds_capped_at_an_hour() {
        let h = headers(&[("x-ratelimit-reset", "90")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(90)));
        // An epoch (GoToSocial's docs call it a unix timestamp), or nonsense: an hour.
        for value in [
            "1772366400",
            "18446744073709551615",
            "1000000000000000000000",
        ] {
            let h = headers(&[("x-ratelimit-reset", value)]);
            assert_eq!(rate_limit_wait(&h, now()), Some(MAX_SERVER_WAIT), "{value}");
        }
        for value in ["-90", "garbage", ""] {
            let h = headers(&[("x-ratelimit-reset", value)]);
            assert_eq!(rate_limit_wait(&h, now()), None, "{value:?}");
        }
    }

    #[test]
    fn a_wait_set_by_hand_is_capped_too() {
        let error = ServerError::new(
            "GET /api/v1/notifications",
            ErrorKind::RateLimited {
                retry_after: Some(Duration::MAX),
            },
        );
        assert_eq!(error.retry_after(), Some(MAX_SERVER_WAIT));
    }

    // Issue 14 item 4: only the server's verdict on the status fails it.

    fn refused(status: u16) -> ServerError {
        http(status, r#"{"error":"no"}"#)
    }

    #[test]
    fn only_a_verdict_on_the_status_is_invalid() {
        for status in [400, 413, 415, 422] {
            assert_eq!(
                refused(status).disposition(),
                Disposition::Invalid,
                "{status}"
            );
        }
        for status in [401, 403] {
            assert_eq!(
                refused(status).disposition(),
                Disposition::TokenRefused,
                "{status}"
            );
        }
        for status in [
            301, 302, 307, 404, 405, 408, 409, 410, 429, 500, 502, 503, 504,
        ] {
            assert_eq!(
                refused(status).disposition(),
                Disposition::Retry,
                "{status}"
            );
        }
        for kind in [
            ErrorKind::Connect {
                detail: "refused".into(),
            },
            ErrorKind::Timeout {
                after: Duration::from_secs(30),
            },
            ErrorKind::ConnectionLost {
                detail: "reset".into(),
            },
            ErrorKind::RateLimited { retry_after: None },
            ErrorKind::InvalidResponse {
                status: 200,
                detail: "garbled".into(),
            },
            ErrorKind::MediaNotReady {
                media_id: "1".into(),
                waited: Duration::from_secs(120),
            },
        ] {
            let error = ServerError::new("POST /api/v1/statuses", kind);
            assert_eq!(error.disposition(), Disposition::Retry, "{error}");
        }
        for kind in [
            ErrorKind::InvalidRequest {
                detail: "newline in a header".into(),
            },
            ErrorKind::File {
                path: "a.png".into(),
                detail: "not found".into(),
            },
        ] {
            let error = ServerError::new("POST /api/v2/media", kind);
            assert_eq!(error.disposition(), Disposition::Invalid, "{error}");
        }
        // `retryable` is unchanged: connecting relies on a 404 not being retryable.
        assert!(!refused(404).retryable());
        assert!(!refused(401).retryable());
        assert!(refused(503).retryable());
    }

    // Issue 14 item 10: the token redacted from every text of an error.

    #[test]
    fn the_token_is_redacted_in_every_form() {
        let token = "tok+en/with=odd chars";
        let echoed = format!(
            "raw {token}; percent {}; lower {}; form {}",
            percent_encode(token, false),
            percent_encode(token, true),
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        );
        let error = ServerError::new(
            "POST /api/v1/statuses",
            kind_from_status(422, &HeaderMap::new(), echoed.as_bytes(), now()),
        )
        .redact(token);
        let text = format!("{error} {error:?}");
        assert!(!text.contains(token), "{text}");
        assert!(!text.contains("tok%2Ben"), "{text}");
        assert!(!text.contains("tok%2ben"), "{text}");
        assert!(!text.contains("tok%2Ben%2Fwith"), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 8, "{text}");

        // An empty token redacts nothing.
        let error = refused(500).redact("");
        assert_eq!(error.server_message(), Some("no"));
    }
}
