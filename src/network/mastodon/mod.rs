//! Talks to the fediverse server: the only code that does. Connects (credentials, software,
//! limits), posts statuses, reads the account's own statuses back, uploads media, listens for
//! mentions (`notifications`).
//!
//! # megalodon, and where we go direct
//!
//! megalodon defines the Mastodon API's account: `verify_credentials` is read into its
//! `entities::Account`. The request itself is ours, like every other: megalodon's client reads
//! a body of any size into memory (a hostile 300 MB answer took 626 MB), ours stops at 8 MiB.
//! Everything else is a direct reqwest call, each for a reason found in megalodon 1.3's own
//! source:
//!
//! * **software** (`/.well-known/nodeinfo`): `megalodon::detector` answers with its own
//!   enum, where Akkoma is Pleroma (they count differently), fails on software it does not
//!   know (we want the generic rule there), and uses a client of its own with no timeout.
//! * **limits** (`/api/v2/instance`, then v1): megalodon reads only v1, and its v1 entity
//!   needs a non-null `contact_account`, which Mastodon may send as null.
//! * **posting** (`POST /api/v1/statuses`): megalodon sends no `Idempotency-Key`.
//! * **own statuses** (`GET /api/v1/accounts/:id/statuses`): megalodon's status entity is
//!   strict (closed enums for visibility, cards, quotes...), so one status it cannot read
//!   fails the whole page, and this is the read that prevents duplicates. Ours reads the
//!   five fields we need and skips (with a warning) a status it cannot read.
//! * **media** (`POST /api/v2/media`, `GET /api/v1/media/:id`): megalodon's `get_media`
//!   unwraps a missing `url`, so a server answering 200 before the URL is known would
//!   panic the daemon; and its upload streams the file without a length.
//! * **mentions** (`GET /api/v1/notifications`, the streaming websocket): megalodon has no
//!   `types[]`, fails a page on a notification type it does not know, and its stream sleeps
//!   blocking, puts the token in the URL and swallows errors (see `notifications`).
//!
//! # Timeouts and errors
//!
//! Every request has a timeout (`ServerOptions::request_timeout`; megalodon's client has
//! none, so its call is wrapped in one). Every failure is a [`ServerError`] that says whether
//! to retry ([`ServerError::retryable`]), for how long the server asked us to wait
//! ([`ServerError::retry_after`]), and whether the request may have been acted on
//! ([`ServerError::uncertain`]); after an uncertain failure of a post, look for the status in
//! [`Server::own_statuses`] before sending it again.
//!
//! # The token
//!
//! Every error of a request that carried it is redacted (`Api::redact`): a server or a proxy
//! may echo the `Authorization` header in an error body, and error texts reach the journal
//! and `state.json`.
//!
//! It goes only in the `Authorization` header of requests to the configured server's
//! `/api/` paths: never in a URL (reqwest puts URLs in its errors), never to nodeinfo's href
//! (which may name another host), never after a redirect (the API client follows none).
//! The one other place it goes is the upgrade request of the notification stream, in its
//! `Authorization` header too, on the host the server's instance document names for its
//! streaming API (Mastodon may serve it from another host, and its own web client sends the
//! token there too).

mod http;
mod instance;
mod notifications;
pub mod oauth;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::network::token::Token;
use crate::network::{Lookup, PartOf};
use crate::posts::config::{ServerConfig, SoftwareSetting};
use crate::text::count::Software;
use crate::text::html::html_to_text;

pub use crate::network::error::{ConnectError, Disposition, ErrorKind, ServerError};
pub use crate::network::{
    Account, CatchUp, Limits, Mention, MentionStream, NewStatus, StreamEvent,
};
pub use http::user_agent;
pub use instance::{
    default_max_characters, limit_warnings, limits, ReportedLimits, DEFAULT_DESCRIPTION_LIMIT,
    DEFAULT_MAX_MEDIA_ATTACHMENTS,
};
pub use notifications::{
    NOTIFICATIONS_PAGE_LIMIT, STREAM_FIRST_RETRY, STREAM_IDLE_LIMIT, STREAM_MAX_RETRY,
    STREAM_STABLE_AFTER,
};

use http::Api;

/// The request timeout when the config does not set one.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An upload carries a whole file: it gets at least this long, whatever the request timeout.
pub const MIN_MEDIA_UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long [`Server::upload_media`] waits for the server to process a file.
pub const MEDIA_PROCESSING_TIMEOUT: Duration = Duration::from_secs(120);
/// The first wait between two polls of a processing media; it doubles up to
/// [`MAX_MEDIA_POLL_INTERVAL`] (each poll counts against the API rate limit).
const FIRST_MEDIA_POLL_INTERVAL: Duration = Duration::from_millis(500);
const MAX_MEDIA_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Mastodon's (and GoToSocial's) largest page of statuses.
const STATUSES_PAGE_LIMIT: usize = 40;

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// `https://host`, without a trailing slash (one is removed if present).
    pub url: String,
    pub software: SoftwareSetting,
    /// The config's override of the server's `max_characters`.
    pub max_characters: Option<usize>,
    /// The longest any one request may take ([`DEFAULT_REQUEST_TIMEOUT`] by default).
    pub request_timeout: Duration,
}

impl ServerOptions {
    /// The options `[server]` in config.toml gives, with the default request timeout.
    pub fn from_config(config: &ServerConfig) -> ServerOptions {
        ServerOptions {
            url: config.url.clone(),
            software: config.software,
            max_characters: config.max_characters,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// A status the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedStatus {
    pub id: String,
    pub created_at: jiff::Timestamp,
    /// Its web page, when the server gives one.
    pub url: Option<String>,
}

/// One of the account's own statuses, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnStatus {
    pub id: String,
    pub created_at: jiff::Timestamp,
    pub in_reply_to_id: Option<String>,
    /// Empty for none.
    pub spoiler_text: String,
    /// Plain text of the status's HTML (see [`crate::text::html::html_to_text`]). Mastodon's HTML
    /// drops a remote mention's domain, so `@alice@example.org` reads back as `@alice`.
    pub text: String,
    /// As the server reports it: `public`, `unlisted`, `private`, `direct`, or a value of its
    /// own (Akkoma's `local`). Compare with [`Visibility::as_str`].
    pub visibility: String,
}

/// A connection to the server, verified. Cheap to clone (the state is shared).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    account: Account,
    limits: Limits,
    /// Where the instance document says the streaming API is (see `notifications`).
    streaming_url: Option<String>,
}

impl fmt::Debug for Server {
    // By hand: the token must never be printed, not even redacted by accident of a derive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.inner.api.base())
            .field("account", &self.inner.account)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Connects: detects the software (when `SoftwareSetting::Auto`), verifies the token and
    /// reads the account, reads the limits (warning about absurd ones), and checks that the
    /// token can read the account's own statuses
    /// ([`ConnectError::CannotReadOwnStatuses`] when not).
    pub async fn connect(options: ServerOptions, token: Token) -> Result<Server, ConnectError> {
        let base = normalize_url(&options.url)?;
        let timeout = options.request_timeout;
        let api = Api::new(base.clone(), token, timeout).map_err(|e| ConnectError::InvalidUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        let unreachable = |error: ServerError| ConnectError::from_server_error(base.clone(), error);

        let software = match options.software {
            SoftwareSetting::Fixed(software) => software,
            SoftwareSetting::Auto => detect_software(&api).await.map_err(unreachable)?,
        };
        let account = verify_credentials(&api).await?;
        let (reported, streaming_url) = read_limits(&api).await.map_err(unreachable)?;
        let limits = instance::limits(software, reported, options.max_characters);
        for warning in instance::limit_warnings(&limits, &reported, options.max_characters) {
            warn!("{warning}");
        }
        check_own_statuses_readable(&api, &account).await?;
        info!(
            server = %base,
            account = %account.acct,
            ?software,
            max_characters = limits.max_characters,
            characters_reserved_per_url = limits.characters_reserved_per_url,
            "connected"
        );
        Ok(Server {
            inner: Arc::new(Inner {
                api,
                account,
                limits,
                streaming_url,
            }),
        })
    }

    /// The account the token belongs to.
    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    /// What the server allows.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The server's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        self.inner.api.base()
    }

    /// Posts a status. Direct rather than through megalodon, which cannot send
    /// `Idempotency-Key`.
    pub async fn post_status(&self, status: &NewStatus) -> Result<PostedStatus, ServerError> {
        const ENDPOINT: &str = "POST /api/v1/statuses";
        let api = &self.inner.api;
        // JSON rather than a form: arrays (`media_ids`) need no `[]` convention, and every
        // Mastodon-API server reads it.
        let body = StatusBody {
            status: &status.text,
            visibility: status.visibility.as_str(),
            spoiler_text: status.spoiler_text.as_deref().filter(|s| !s.is_empty()),
            language: status.language.as_deref(),
            in_reply_to_id: status.in_reply_to_id.as_deref(),
            media_ids: &status.media_ids,
        };
        let mut request = api.request(Method::POST, "/api/v1/statuses").json(&body);
        if let Some(key) = &status.idempotency_key {
            let value = HeaderValue::from_str(key).map_err(|e| {
                ServerError::new(
                    ENDPOINT,
                    ErrorKind::InvalidRequest {
                        detail: format!("idempotency key: {e}"),
                    },
                )
            })?;
            request = request.header("Idempotency-Key", value);
        }
        let answer = api.send(ENDPOINT, request, api.timeout()).await?;
        let posted: RawPostedStatus = answer.json(ENDPOINT)?;
        debug!(id = %posted.id, "status posted");
        Ok(PostedStatus {
            id: posted.id,
            created_at: posted.created_at,
            url: posted.url,
        })
    }

    /// The account's newest statuses, newest first, at most `limit`: replies included,
    /// reblogs excluded. Pages through the server's 40-status pages as needed.
    pub async fn own_statuses(&self, limit: usize) -> Result<Vec<OwnStatus>, ServerError> {
        self.read_own_statuses(limit, None).await
    }

    /// The id of the account's newest own status (replies included, reblogs excluded), or
    /// `None` when it has none: read just before a post's first part is sent, so that a part
    /// found later must be newer than it.
    pub async fn newest_own_status_id(&self) -> Result<Option<String>, ServerError> {
        Ok(self.own_statuses(1).await?.into_iter().next().map(|s| s.id))
    }

    /// The account's own statuses newer than `after` (all of them when `None`), newest first,
    /// at most `limit`. The server is asked for them with `since_id` (Mastodon:
    /// <https://docs.joinmastodon.org/methods/accounts/#statuses>; GoToSocial's
    /// `internal/api/client/accounts/statusesget.go`; Pleroma's
    /// `lib/pleroma/web/api_spec/operations/account_operation.ex`), and the answer is checked
    /// here too: reading stops at `after` itself or at the first status that is surely older,
    /// so a server that ignores `since_id` can never make an older status pass for a new one.
    pub async fn own_statuses_after(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<OwnStatus>, ServerError> {
        self.read_own_statuses(limit, after).await
    }

    async fn read_own_statuses(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<OwnStatus>, ServerError> {
        let api = &self.inner.api;
        let path = format!("/api/v1/accounts/{}/statuses", self.inner.account.id);
        let endpoint = format!("GET {path}");
        let mut statuses: Vec<OwnStatus> = Vec::new();
        let mut max_id: Option<String> = None;
        'pages: while statuses.len() < limit {
            let page_limit = (limit - statuses.len()).min(STATUSES_PAGE_LIMIT);
            let mut query = vec![
                ("limit", page_limit.to_string()),
                ("exclude_reblogs", "true".to_string()),
            ];
            if let Some(max_id) = &max_id {
                query.push(("max_id", max_id.clone()));
            }
            if let Some(after) = after {
                query.push(("since_id", after.to_string()));
            }
            let request = api.request(Method::GET, &path).query(&query);
            let answer = api.send(&endpoint, request, api.timeout()).await?;
            let page: Vec<serde_json::Value> = answer.json(&endpoint)?;
            let Some(last_id) = page
                .last()
                .and_then(|s| s.get("id"))
                .and_then(|id| id.as_str())
                .map(str::to_string)
            else {
                break;
            };
            for value in page {
                if let (Some(after), Some(id)) = (after, value.get("id").and_then(|v| v.as_str())) {
                    if !surely_newer(id, after) {
                        break 'pages;
                    }
                }
                match serde_json::from_value::<RawOwnStatus>(value) {
                    Ok(raw) if raw.reblog.is_none() => statuses.push(raw.into_own_status()),
                    Ok(_) => {} // a server that ignored `exclude_reblogs`
                    Err(error) => warn!(%error, "skipping one of our statuses that cannot be read"),
                }
            }
            if max_id.as_deref() == Some(last_id.as_str()) {
                break; // a server that ignores `max_id` would loop forever
            }
            max_id = Some(last_id);
        }
        statuses.truncate(limit);
        Ok(statuses)
    }

    /// What the daemon keeps of this server in the state, for offline commands.
    pub fn seen(&self, at: jiff::Timestamp) -> crate::state::ServerSeen {
        let limits = &self.inner.limits;
        crate::state::ServerSeen {
            url: self.url().to_string(),
            software: limits.software,
            // The server's own: an offline command applies the config's override itself, and
            // must see a fixed override as fixed, not as the server's limit.
            max_characters: limits.server_max_characters,
            characters_reserved_per_url: limits.characters_reserved_per_url,
            max_media_attachments: limits.max_media_attachments,
            description_limit: limits.description_limit,
            image_size_limit: Some(limits.media.image_bytes),
            video_size_limit: Some(limits.media.video_bytes),
            account_id: self.inner.account.id.clone(),
            acct: self.inner.account.acct.clone(),
            at,
        }
    }

    /// Uploads a media file with its alt text and waits (at most
    /// [`MEDIA_PROCESSING_TIMEOUT`]) until the server has processed it; returns its id for
    /// [`NewStatus::media_ids`].
    ///
    /// `path` is the real path checked when the post was read (a regular file inside the
    /// posts folder); it is checked again here, as it may have changed since: it must still
    /// be its own real path (no symbolic link anywhere on it now) and a regular file. The file
    /// is streamed from disk, never read into memory whole.
    pub async fn upload_media(&self, path: &Path, alt: &str) -> Result<String, ServerError> {
        // v2 first (the server processes in the background); v1 for servers without it.
        let media = match self.post_media("/api/v2/media", path, alt).await {
            Err(error) if error.status() == Some(404) => {
                debug!("no /api/v2/media on this server, trying v1");
                self.post_media("/api/v1/media", path, alt).await?
            }
            result => result?,
        };
        if media.url.is_none() {
            self.wait_for_media(&media.id).await?;
        }
        Ok(media.id)
    }

    async fn post_media(
        &self,
        api_path: &str,
        path: &Path,
        alt: &str,
    ) -> Result<RawMedia, ServerError> {
        let api = &self.inner.api;
        let endpoint = format!("POST {api_path}");
        let file_error = |detail: String| {
            ServerError::new(
                endpoint.clone(),
                ErrorKind::File {
                    path: path.to_path_buf(),
                    detail,
                },
            )
        };
        let (file, length) = open_media(path).await.map_err(file_error)?;
        let timeout = api.timeout().max(MIN_MEDIA_UPLOAD_TIMEOUT);
        let request = api
            .request(Method::POST, api_path)
            .multipart(media_form(path, file, length, alt))
            .timeout(timeout);
        api.send(&endpoint, request, timeout)
            .await?
            .json::<RawMedia>(&endpoint)
    }

    /// Polls `GET /api/v1/media/:id` until it answers 200 with a URL (206 means "processing").
    async fn wait_for_media(&self, id: &str) -> Result<(), ServerError> {
        let api = &self.inner.api;
        let path = format!("/api/v1/media/{id}");
        let endpoint = format!("GET {path}");
        let mut waited = Duration::ZERO;
        let mut interval = FIRST_MEDIA_POLL_INTERVAL;
        loop {
            if waited >= MEDIA_PROCESSING_TIMEOUT {
                return Err(ServerError::new(
                    endpoint,
                    ErrorKind::MediaNotReady {
                        media_id: id.to_string(),
                        waited,
                    },
                ));
            }
            tokio::time::sleep(interval).await;
            waited += interval;
            interval = (interval * 2).min(MAX_MEDIA_POLL_INTERVAL);
            let request = api.request(Method::GET, &path);
            let answer = api.send(&endpoint, request, api.timeout()).await?;
            if answer.status == StatusCode::PARTIAL_CONTENT {
                continue;
            }
            if answer.json::<RawMedia>(&endpoint)?.url.is_some() {
                return Ok(());
            }
        }
    }
}

/// Checks the configured URL and drops a trailing slash.
fn normalize_url(url: &str) -> Result<String, ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("it must start with https:// (or http://)"));
    }
    if parsed.host().is_none() {
        return Err(invalid("it has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "it must not carry credentials; the token goes in the token file",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The server's software from nodeinfo. Absent or unreadable nodeinfo means `Generic`; only
/// a retryable failure (network, 5xx, 429) is an error, so a passing outage does not make
/// us count by the wrong rule.
async fn detect_software(api: &Api) -> Result<Software, ServerError> {
    let well_known_url = format!("{}/.well-known/nodeinfo", api.base());
    let fetch = |url: String, endpoint: &'static str| async move {
        let answer = api
            .send(endpoint, api.public_get(&url), api.timeout())
            .await?;
        answer.json::<serde_json::Value>(endpoint)
    };
    let generic = |why: String| {
        warn!("cannot tell the server's software ({why}); counting by the generic rule");
        Ok(Software::Generic)
    };
    let well_known = match fetch(well_known_url, "GET /.well-known/nodeinfo").await {
        Ok(doc) => doc,
        Err(error) if error.retryable() && !is_garbled(&error) => return Err(error),
        Err(error) => return generic(error.to_string()),
    };
    let Some(href) = instance::nodeinfo_href(&well_known) else {
        return generic("/.well-known/nodeinfo lists no nodeinfo 2.x document".to_string());
    };
    if !(href.starts_with("https://") || href.starts_with("http://")) {
        return generic(format!("nodeinfo href {href:?} is not an http(s) URL"));
    }
    let nodeinfo = match fetch(href, "GET nodeinfo").await {
        Ok(doc) => doc,
        Err(error) if error.retryable() && !is_garbled(&error) => return Err(error),
        Err(error) => return generic(error.to_string()),
    };
    match instance::nodeinfo_software_name(&nodeinfo) {
        Some(name) => {
            let software = instance::software_from_name(&name);
            debug!(name, ?software, "software from nodeinfo");
            Ok(software)
        }
        None => generic("nodeinfo has no software.name".to_string()),
    }
}

/// `GET /api/v1/accounts/verify_credentials`, read through our capped client (megalodon's
/// reads a body of any size into memory: a hostile 300 MB answer took 626 MB) into
/// megalodon's own account entity, so that megalodon still defines what a Mastodon API
/// account is. Its software-specific entities (mastodon, gotosocial, pleroma) are private to
/// the crate and have the same fields as `megalodon::entities::Account`, which they convert
/// into.
async fn verify_credentials(api: &Api) -> Result<Account, ConnectError> {
    const ENDPOINT: &str = "GET /api/v1/accounts/verify_credentials";
    let failed = |error| ConnectError::from_credentials_error(api.base(), error);
    let request = api.request(Method::GET, "/api/v1/accounts/verify_credentials");
    let account: megalodon::entities::Account = api
        .send(ENDPOINT, request, api.timeout())
        .await
        .and_then(|answer| answer.json(ENDPOINT))
        .map_err(failed)?;
    Ok(Account {
        id: account.id,
        acct: account.acct,
        username: account.username,
        bot: account.bot,
    })
}

/// Reads one of the account's own statuses: a token without `read:statuses` (made by hand)
/// is refused there (401/403), and could never verify a post whose answer was lost, so it is
/// the operator's to fix before the daemon starts.
async fn check_own_statuses_readable(api: &Api, account: &Account) -> Result<(), ConnectError> {
    let path = format!("/api/v1/accounts/{}/statuses", account.id);
    let endpoint = format!("GET {path}");
    let request = api
        .request(Method::GET, &path)
        .query(&[("limit", "1"), ("exclude_reblogs", "true")]);
    api.send(&endpoint, request, api.timeout())
        .await
        .map(drop)
        .map_err(|error| ConnectError::from_own_statuses_error(api.base(), error))
}

/// Whether the status id `id` is surely newer than `than`. Ids are opaque, but each server
/// orders one account's ids by time: Mastodon's are numbers (snowflakes), GoToSocial's ULIDs
/// and Pleroma's flake ids fixed-width strings that sort by time. Same width: compared as
/// strings; numbers of different widths: the longer is the larger; anything else cannot be
/// told apart and counts as newer (the server's `since_id` is then the only filter).
fn surely_newer(id: &str, than: &str) -> bool {
    if id == than {
        return false;
    }
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if id.len() == than.len() {
        id > than
    } else if numeric(id) && numeric(than) {
        id.len() > than.len()
    } else {
        true
    }
}

/// The limits from `/api/v2/instance`, else `/api/v1/instance`, else nothing (defaults), and
/// the streaming URL the first of them that names one reports.
/// Direct: megalodon reads only v1, and needs a `contact_account` Mastodon may send as null.
/// Only a retryable failure is an error: guessing limits during an outage could make every
/// post too long.
async fn read_limits(api: &Api) -> Result<(ReportedLimits, Option<String>), ServerError> {
    let mut streaming_url = None;
    for (path, endpoint) in [
        ("/api/v2/instance", "GET /api/v2/instance"),
        ("/api/v1/instance", "GET /api/v1/instance"),
    ] {
        let answer = api
            .send(endpoint, api.request(Method::GET, path), api.timeout())
            .await
            .and_then(|answer| answer.json::<serde_json::Value>(endpoint));
        match answer {
            Ok(doc) => {
                streaming_url = streaming_url.or_else(|| instance::streaming_url(&doc));
                let reported = instance::reported_limits(&doc);
                if !reported.is_empty() {
                    return Ok((reported, streaming_url));
                }
                debug!(endpoint, "no limits in this document");
            }
            Err(error) if error.retryable() && !is_garbled(&error) => return Err(error),
            Err(error) => debug!(%error, "instance document not usable"),
        }
    }
    warn!("the server reports no limits; using the defaults for its software");
    Ok((ReportedLimits::default(), streaming_url))
}

/// A success whose body is not the document we asked for: retrying will not change it.
fn is_garbled(error: &ServerError) -> bool {
    matches!(error.kind(), ErrorKind::InvalidResponse { .. })
}

/// Opens a media file for upload: `path` must still be its own real path (a symbolic link
/// put anywhere on it since the post was read would lead elsewhere) and a regular file.
async fn open_media(path: &Path) -> Result<(tokio::fs::File, u64), String> {
    let real = tokio::fs::canonicalize(path)
        .await
        .map_err(|e| e.to_string())?;
    if real != path {
        return Err(
            "the path goes through a symbolic link now; it is not uploaded (run `perennial check`)"
                .to_string(),
        );
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let metadata = file.metadata().await.map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file; it is not uploaded".to_string());
    }
    Ok((file, metadata.len()))
}

fn media_form(
    path: &Path,
    file: tokio::fs::File,
    length: u64,
    alt: &str,
) -> reqwest::multipart::Form {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "media".to_string());
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    // At most the length seen when it was opened: a file that grows meanwhile sends no more.
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(
        tokio::io::AsyncReadExt::take(file, length),
    ));
    let part = reqwest::multipart::Part::stream_with_length(body, length).file_name(file_name);
    // A guessed MIME type is always a valid one.
    let part = match part.mime_str(mime.essence_str()) {
        Ok(part) => part,
        Err(_) => unreachable!("mime_guess returned an invalid MIME type"),
    };
    reqwest::multipart::Form::new()
        .part("file", part)
        .text("description", alt.to_string())
}

// ---------------------------------------------------------------------------------------
// Wire shapes: only the fields we read, everything else ignored.

#[derive(Serialize)]
struct StatusBody<'a> {
    status: &'a str,
    visibility: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    spoiler_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_reply_to_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    media_ids: &'a [String],
}

#[derive(Deserialize)]
struct RawPostedStatus {
    id: String,
    created_at: jiff::Timestamp,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawOwnStatus {
    id: String,
    created_at: jiff::Timestamp,
    #[serde(default)]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    spoiler_text: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    reblog: Option<serde::de::IgnoredAny>,
}

impl RawOwnStatus {
    fn into_own_status(self) -> OwnStatus {
        OwnStatus {
            id: self.id,
            created_at: self.created_at,
            in_reply_to_id: self.in_reply_to_id,
            spoiler_text: self.spoiler_text.unwrap_or_default(),
            text: html_to_text(self.content.as_deref().unwrap_or_default()),
            visibility: self.visibility.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct RawMedia {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

/// Mastodon's client API behind the network boundary.
impl crate::network::Network for Server {
    fn account(&self) -> &Account {
        Server::account(self)
    }

    fn limits(&self) -> &Limits {
        Server::limits(self)
    }

    fn seen(&self, at: jiff::Timestamp) -> crate::state::ServerSeen {
        Server::seen(self, at)
    }

    /// A post's first part must be newer than the newest own status before it; a reply is
    /// recognised by the status it answers, so it needs nothing (and no request).
    fn before_first_part(&self, of: PartOf) -> BoxFuture<'_, Result<Option<String>, ServerError>> {
        match of {
            PartOf::Post => Box::pin(self.newest_own_status_id()),
            PartOf::Reply => Box::pin(std::future::ready(Ok(None))),
        }
    }

    fn send<'a>(&'a self, part: &'a NewStatus) -> BoxFuture<'a, Result<String, ServerError>> {
        Box::pin(async move { Ok(self.post_status(part).await?.id) })
    }

    fn find_sent<'a>(
        &'a self,
        lookup: &'a Lookup<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, ServerError>> {
        Box::pin(async move {
            let statuses = self
                .own_statuses_after(OWN_STATUSES_SEARCHED, lookup.after)
                .await?;
            Ok(find_in(&statuses, lookup))
        })
    }

    fn upload_media<'a>(
        &'a self,
        path: &'a Path,
        alt: &'a str,
    ) -> BoxFuture<'a, Result<String, ServerError>> {
        Box::pin(Server::upload_media(self, path, alt))
    }

    fn mentions_since<'a>(
        &'a self,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CatchUp, ServerError>> {
        Box::pin(Server::mentions_since(self, cursor))
    }

    fn requests_left(&self) -> Option<u64> {
        self.inner.api.requests_left()
    }

    fn listen(&self, shutdown: CancellationToken) -> MentionStream {
        Server::listen(self, shutdown)
    }
}

/// How many of the account's latest statuses are searched for a part (Mastodon's largest page).
pub const OWN_STATUSES_SEARCHED: usize = 40;

/// The status `lookup` describes among `statuses` (newest first): the oldest match, since the
/// first copy is the one that counts. Only a status of ours replying to the same status can
/// match (a thread's later part, a reply to a mention); a first part must be newer than
/// `lookup.after` (ids grow with time), so no clock is involved.
pub fn find_in(statuses: &[OwnStatus], lookup: &Lookup<'_>) -> Option<String> {
    statuses
        .iter()
        .filter(|status| {
            lookup
                .not_before
                .is_none_or(|earliest| status.created_at >= earliest)
        })
        .filter(|status| status.in_reply_to_id.as_deref() == lookup.in_reply_to)
        .rfind(|status| {
            lookup
                .text
                .is_none_or(|(text, spoiler)| is_same_status(status, text, spoiler))
        })
        .map(|status| status.id.clone())
}

/// Whether a status read back is the part we meant to send. The server's HTML loses some
/// detail (a remote mention's domain, whitespace), so both sides are compared as their
/// letters and digits, lower-cased, without `@mentions`.
fn is_same_status(status: &OwnStatus, text: &str, spoiler_text: &str) -> bool {
    fingerprint(&status.text) == fingerprint(text)
        && fingerprint(&status.spoiler_text) == fingerprint(spoiler_text)
}

fn fingerprint(text: &str) -> String {
    text.split_whitespace()
        .filter(|word| !word.starts_with('@'))
        .flat_map(|word| word.chars())
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_ignore_what_html_loses() {
        use super::fingerprint;
        assert_eq!(
            fingerprint("@alice@example.org Hello,\n\nworld! https://example.org/a?b=1"),
            fingerprint("@alice Hello, world! https://example.org/a?b=1")
        );
        assert_ne!(
            fingerprint("Hello world 1/3"),
            fingerprint("Hello world 2/3")
        );
    }

    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            normalize_url("https://fosstodon.org/").unwrap(),
            "https://fosstodon.org"
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "fosstodon.org",
            "ftp://x.org",
            "https://x.org/?a=1",
            "https://u:p@x.org",
        ] {
            assert!(
                matches!(normalize_url(bad), Err(ConnectError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_body_leaves_out_what_is_unset() {
        let mut status = NewStatus::new("hello", crate::posts::config::Visibility::Unlisted);
        status.spoiler_text = Some(String::new());
        let body = StatusBody {
            status: &status.text,
            visibility: status.visibility.as_str(),
            spoiler_text: status.spoiler_text.as_deref().filter(|s| !s.is_empty()),
            language: status.language.as_deref(),
            in_reply_to_id: None,
            media_ids: &status.media_ids,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"status":"hello","visibility":"unlisted"}"#
        );
    }

    /// The daemon spawns these on a multi-threaded runtime: they must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(server: Server, options: ServerOptions, status: NewStatus) {
        fn send<T: Send + Sync + Clone + 'static>(_: &T) {}
        fn future<T: Send>(_: T) {}
        send(&server);
        future(Server::connect(options, Token::new("")));
        future(server.post_status(&status));
        future(server.own_statuses(1));
        future(server.upload_media(Path::new("a.png"), "alt"));
    }

    #[test]
    fn ids_are_compared_only_where_the_servers_order_them() {
        // GoToSocial's ULIDs, Pleroma's flake ids: same width, ordered as strings.
        assert!(surely_newer(
            "01J00000000000000000000002",
            "01J00000000000000000000001"
        ));
        assert!(!surely_newer(
            "01J00000000000000000000001",
            "01J00000000000000000000002"
        ));
        assert!(!surely_newer(
            "01J00000000000000000000001",
            "01J00000000000000000000001"
        ));
        // Mastodon's snowflakes: numbers, the longer the larger.
        assert!(surely_newer("110000000000000010", "99999"));
        assert!(!surely_newer("99999", "110000000000000010"));
        assert!(!surely_newer("110000000000000009", "110000000000000010"));
        // Nothing to tell: newer, the server's `since_id` decides.
        assert!(surely_newer("abc", "01J00000000000000000000001"));
    }

    #[test]
    fn own_status_reads_leniently() {
        let raw: RawOwnStatus = serde_json::from_str(
            r#"{"id":"01J0","created_at":"2026-03-01T12:00:00.000Z","content":"<p>a &amp; b</p>",
                "visibility":"local","card":{"type":"something-new"},"quote":{"state":"new-state"}}"#,
        )
        .unwrap();
        let own = raw.into_own_status();
        assert_eq!(own.text, "a & b");
        assert_eq!(own.visibility, "local");
        assert_eq!(own.spoiler_text, "");
    }
}
