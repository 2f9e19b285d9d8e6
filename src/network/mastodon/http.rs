//! The direct HTTP client: one place that sets the User-Agent, the timeouts and the token, reads
//! answers with a size cap, and sorts failures into [`ServerError`]s.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::network::token::Token;

use crate::network::error::{
    kind_from_reqwest, kind_from_status, ErrorKind, Redactor, ServerError,
};

/// No API answer we read is anywhere near this; a bigger one is a broken or hostile server.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Opening a connection takes far less than a request; a separate, shorter limit also tells
/// "never connected" (certain) from "no answer" (uncertain).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` of every request: `perennial/VERSION`, plus `(+REPOSITORY)` once
/// Cargo.toml names one, so a server's admin can see who is calling.
pub fn user_agent() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match env!("CARGO_PKG_REPOSITORY") {
        "" => format!("perennial/{version}"),
        repository => format!("perennial/{version} (+{repository})"),
    }
}

/// The upgrade request of a websocket (tungstenite's `http::Request`).
pub type WebSocketRequest = tokio_tungstenite::tungstenite::handshake::client::Request;

/// An answer with a success status, body read.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, endpoint: &str) -> Result<T, ServerError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            ServerError::new(
                endpoint,
                ErrorKind::InvalidResponse {
                    status: self.status.as_u16(),
                    detail: error.to_string(),
                },
            )
        })
    }
}

/// Requests to the configured server's API, authenticated with the token.
pub struct Api {
    /// For the API: never follows redirects, so a POST is never silently turned into a GET and
    /// the token never follows a redirect.
    api_client: reqwest::Client,
    /// For public documents (nodeinfo): follows a few redirects, never carries the token.
    public_client: reqwest::Client,
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    base: String,
    token: Token,
    timeout: Duration,
    /// `X-RateLimit-Remaining` of the newest answer that had one ([`UNKNOWN`] before).
    requests_left: std::sync::atomic::AtomicU64,
}

/// No answer has said yet how many requests are left.
const UNKNOWN: u64 = u64::MAX;

/// How many more requests the server allows in its current window, from an answer's
/// `X-RateLimit-Remaining` (Mastodon, <https://docs.joinmastodon.org/api/rate-limits/>;
/// GoToSocial, `internal/middleware/ratelimit.go`, sends it too). Pure.
pub fn requests_left(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("x-ratelimit-remaining")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A client with our User-Agent and timeouts; the caller sets the redirect policy.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
}

/// An answer of any status, body read (at most [`MAX_BODY_BYTES`]).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The answer when it is a success, else the server's refusal as a [`ServerError`].
    pub fn success(self, endpoint: &str) -> Result<Answer, ServerError> {
        if self.status.is_success() {
            Ok(Answer {
                status: self.status,
                body: self.body,
            })
        } else {
            Err(ServerError::new(
                endpoint,
                kind_from_status(
                    self.status.as_u16(),
                    &self.headers,
                    &self.body,
                    jiff::Timestamp::now(),
                ),
            ))
        }
    }
}

/// Sends a request and reads its answer whatever its status (callers that can explain a
/// refusal, such as OAuth's, look at it before [`Reply::success`]).
pub async fn fetch(
    endpoint: &str,
    request: RequestBuilder,
    timeout: Duration,
) -> Result<Reply, ServerError> {
    let error = |kind| ServerError::new(endpoint, kind);
    let response = request
        .send()
        .await
        .map_err(|e| error(kind_from_reqwest(e, timeout)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response)
        .await
        .map_err(|kind| error(with_status(kind, status, timeout)))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

impl Api {
    pub fn new(base: String, token: Token, timeout: Duration) -> Result<Api, reqwest::Error> {
        let builder = || client_builder(timeout);
        Ok(Api {
            api_client: builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            public_client: builder()
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()?,
            base,
            token,
            timeout,
            requests_left: std::sync::atomic::AtomicU64::new(UNKNOWN),
        })
    }

    /// How many more requests the server's newest answer allowed, if one said.
    pub fn requests_left(&self) -> Option<u64> {
        let left = self
            .requests_left
            .load(std::sync::atomic::Ordering::Relaxed);
        (left != UNKNOWN).then_some(left)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A request to `path` (starting with `/api/`) on the server, with the token in the
    /// `Authorization` header (reqwest marks it sensitive, so it is never printed).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.api_client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(self.token.expose())
    }

    /// The upgrade request of a websocket at `url` (the server's streaming API), with the
    /// User-Agent and the token in the `Authorization` header, marked sensitive; never in the
    /// URL, where megalodon puts it.
    pub fn websocket_request(&self, url: &str) -> Result<WebSocketRequest, ErrorKind> {
        let invalid = |detail: String| ErrorKind::InvalidRequest { detail };
        let mut request = url
            .into_client_request()
            .map_err(|e| invalid(e.to_string()))?;
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            // Never the value itself in the message.
            .map_err(|_| invalid("the token is not a valid header value".to_string()))?;
        bearer.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, bearer);
        if let Ok(agent) = HeaderValue::from_str(&user_agent()) {
            headers.insert(USER_AGENT, agent);
        }
        Ok(request)
    }

    /// A GET of a public document at a full URL, without the token: nodeinfo's href may name
    /// another host.
    pub fn public_get(&self, url: &str) -> RequestBuilder {
        self.public_client.get(url)
    }

    /// Sends a request and reads its answer; any status but 2xx is an error, with the token
    /// redacted from its text ([`Api::redact`]).
    pub async fn send(
        &self,
        endpoint: &str,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<Answer, ServerError> {
        let reply = fetch(endpoint, request, timeout)
            .await
            .map_err(|error| self.redact(error))?;
        if let Some(left) = requests_left(&reply.headers) {
            self.requests_left
                .store(left.min(UNKNOWN - 1), std::sync::atomic::Ordering::Relaxed);
        }
        reply.success(endpoint).map_err(|error| self.redact(error))
    }

    /// `error` without the token anywhere in its text. Every error of a request that
    /// carried the token passes through here ([`Api::send`], the notification stream), so
    /// that a server or proxy echoing the `Authorization` header in its error body (nginx
    /// debug pages, some WAFs) cannot put the token in the journal or in `state.json`.
    pub fn redact(&self, error: ServerError) -> ServerError {
        error.redact(self.token.expose())
    }

    /// `text` without the token (see [`Api::redact`]).
    pub fn redact_text(&self, text: String) -> String {
        Redactor::new(self.token.expose()).apply(text)
    }
}

/// The body, at most [`MAX_BODY_BYTES`]; `Err` carries the reqwest error or the overflow.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

enum BodyError {
    Read(reqwest::Error),
    TooLarge,
}

fn with_status(error: BodyError, status: StatusCode, timeout: Duration) -> ErrorKind {
    match error {
        BodyError::Read(e) => kind_from_reqwest(e, timeout),
        BodyError::TooLarge => ErrorKind::InvalidResponse {
            status: status.as_u16(),
            detail: format!(
                "the answer is too large (over {} MiB); a Mastodon API answer is far smaller",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_left_is_read_from_the_rate_limit_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(requests_left(&headers), None);
        // As GoToSocial sends it (any case: header names are case-insensitive).
        headers.insert("X-Ratelimit-Remaining", " 297".parse().unwrap());
        assert_eq!(requests_left(&headers), Some(297));
        headers.insert("x-ratelimit-remaining", "many".parse().unwrap());
        assert_eq!(requests_left(&headers), None);
    }
}
