//! `perennial login`'s side of the server: the scopes the bot asks for, registering an app,
//! the out-of-band authorization-code flow, then checking the token and setting the bot flag.
//!
//! Direct reqwest calls rather than megalodon's `register_app` / `fetch_access_token`, which
//! do work for this flow, for three reasons found in megalodon 1.3's source: its client has no
//! timeout; a refused code comes back without the OAuth `error` code (`invalid_grant`), which
//! is what tells the operator "wrong code" from "broken server"; and its `update_credentials`
//! sends `bot` as a form string, which GoToSocial's typed parser rejects with 400. Here every
//! request has the module's timeouts and error sorting, and no redirect is followed.
//!
//! The token only ever travels in the `Authorization` header (and in the body of the token
//! endpoint's answer); the client secret only in request bodies. Neither is in a URL, an
//! error or a `Debug`.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::network::token::Token;

use super::http::{client_builder, fetch, Api};
use super::{normalize_url, Account};
use crate::network::error::{ConnectError, ErrorKind, Redactor, ServerError};

/// The app's name, shown to the account's owner on the authorization page and next to each
/// status.
pub const APP_NAME: &str = "perennial";
/// Out of band: the server shows the code on its page instead of redirecting to us.
pub const OUT_OF_BAND: &str = "urn:ietf:wg:oauth:2.0:oob";

/// Reading the account itself (`verify_credentials`, nothing else), Mastodon 4.3+.
pub const PROFILE_SCOPE: &str = "profile";
/// The same for servers that do not know `profile`: reading accounts (public information).
pub const READ_ACCOUNTS_SCOPE: &str = "read:accounts";
/// What the daemon does besides knowing who it is: read its own statuses (duplicates are
/// looked for there) and the stream, read mentions, post, upload media.
pub const DAEMON_SCOPES: [&str; 4] = [
    "read:statuses",
    "read:notifications",
    "write:statuses",
    "write:media",
];
/// Changing the account's profile, only asked for with `--bot` (to set the bot flag).
pub const BOT_FLAG_SCOPE: &str = "write:accounts";

/// The scopes to ask for: `profile` where the server says it knows it (an app asking for
/// a scope Mastodon does not know is refused; Mastodon before 4.3, GoToSocial and Pleroma
/// need `read:accounts` to read the account), the daemon's, and `write:accounts` for the bot
/// flag. Never `follow` (deprecated since Mastodon 3.5, and the bot follows no one).
pub fn scopes(server_knows_profile: bool, set_bot_flag: bool) -> Vec<&'static str> {
    let account = if server_knows_profile {
        PROFILE_SCOPE
    } else {
        READ_ACCOUNTS_SCOPE
    };
    let mut scopes = vec![account];
    scopes.extend(DAEMON_SCOPES);
    if set_bot_flag {
        scopes.push(BOT_FLAG_SCOPE);
    }
    scopes
}

/// An app registered on the server.
pub struct RegisteredApp {
    client_id: String,
    client_secret: String,
    /// Space-separated, as sent.
    scopes: String,
}

impl RegisteredApp {
    /// The scopes it was registered with, space-separated.
    pub fn scopes(&self) -> &str {
        &self.scopes
    }
}

impl fmt::Debug for RegisteredApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredApp")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why the authorization code could not be turned into a token.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The server refused the code (Doorkeeper answers 400 `invalid_grant` for a wrong,
    /// expired or already used one).
    #[error("the server refused the authorization code ({error}): {description}")]
    Refused { error: String, description: String },
    /// The server answered 200 without a token we could use.
    #[error("the server's answer to POST /oauth/token holds no usable access token")]
    NoToken,
    #[error("{0}")]
    Server(#[from] ServerError),
}

/// The unauthenticated part of the flow, on one server.
pub struct OAuthClient {
    /// Follows no redirect: a POST is never turned into a GET, and a secret never follows one.
    client: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl OAuthClient {
    /// A client for the server at `url` (`https://host`; a trailing slash is dropped).
    pub fn new(url: &str, timeout: Duration) -> Result<OAuthClient, ConnectError> {
        let base = normalize_url(url)?;
        let client = client_builder(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConnectError::InvalidUrl {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(OAuthClient {
            client,
            base,
            timeout,
        })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether the server lists `profile` in its OAuth metadata (RFC 8414, which Mastodon
    /// serves since 4.3, the version that added the scope). No document, or one without the
    /// scope, is `false`; only a failure to reach the server is an error.
    pub async fn knows_profile_scope(&self) -> Result<bool, ServerError> {
        const ENDPOINT: &str = "GET /.well-known/oauth-authorization-server";
        let url = format!("{}/.well-known/oauth-authorization-server", self.base);
        let reply = fetch(ENDPOINT, self.client.get(url), self.timeout).await?;
        if !reply.status.is_success() {
            return Ok(false);
        }
        let metadata: serde_json::Value = match serde_json::from_slice(&reply.body) {
            Ok(metadata) => metadata,
            Err(_) => return Ok(false),
        };
        Ok(metadata["scopes_supported"]
            .as_array()
            .is_some_and(|scopes| scopes.iter().any(|s| s == PROFILE_SCOPE)))
    }

    /// `POST /api/v1/apps`, out of band, with exactly `scopes`.
    pub async fn register_app(&self, scopes: &[&str]) -> Result<RegisteredApp, ServerError> {
        const ENDPOINT: &str = "POST /api/v1/apps";
        let scopes = scopes.join(" ");
        let form = AppForm {
            client_name: APP_NAME,
            redirect_uris: OUT_OF_BAND,
            scopes: &scopes,
        };
        let request = self
            .client
            .post(format!("{}/api/v1/apps", self.base))
            .form(&form);
        let reply = fetch(ENDPOINT, request, self.timeout).await?;
        let app: RawApp = reply.success(ENDPOINT)?.json(ENDPOINT)?;
        Ok(RegisteredApp {
            client_id: app.client_id,
            client_secret: app.client_secret,
            scopes,
        })
    }

    /// The page where the account's owner authorizes `app` and is shown the code.
    pub fn authorization_url(&self, app: &RegisteredApp) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", OUT_OF_BAND)
            .append_pair("response_type", "code")
            .append_pair("scope", &app.scopes)
            .finish();
        format!("{}/oauth/authorize?{query}", self.base)
    }

    /// `POST /oauth/token` with the authorization code the owner copied from the page.
    pub async fn exchange_code(&self, app: &RegisteredApp, code: &str) -> Result<Token, CodeError> {
        const ENDPOINT: &str = "POST /oauth/token";
        let form = TokenForm {
            grant_type: "authorization_code",
            code,
            client_id: &app.client_id,
            client_secret: &app.client_secret,
            redirect_uri: OUT_OF_BAND,
            scope: &app.scopes,
        };
        let request = self
            .client
            .post(format!("{}/oauth/token", self.base))
            .form(&form);
        // The app's secret and the code travel in this request: a server or proxy echoing
        // the request in an error must not put them in a message.
        let redact = |error: ServerError| error.redact(&app.client_secret).redact(code);
        let reply = fetch(ENDPOINT, request, self.timeout)
            .await
            .map_err(redact)?;
        if matches!(
            reply.status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
        ) {
            if let Ok(refusal) = serde_json::from_slice::<OAuthRefusal>(&reply.body) {
                let text = |t: String| {
                    Redactor::new(code).apply(Redactor::new(&app.client_secret).apply(t))
                };
                return Err(CodeError::Refused {
                    error: text(refusal.error),
                    description: text(
                        refusal
                            .error_description
                            .unwrap_or_else(|| "no explanation given".to_string()),
                    ),
                });
            }
        }
        let answer: RawToken = reply
            .success(ENDPOINT)
            .and_then(|answer| answer.json(ENDPOINT))
            .map_err(redact)?;
        let token = answer.access_token.trim();
        // What an `Authorization` header can carry (the check `token.rs` makes on reading).
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(CodeError::NoToken);
        }
        Ok(Token::new(token))
    }

    /// The account `token` belongs to (`GET /api/v1/accounts/verify_credentials`).
    pub async fn verify(&self, token: &Token) -> Result<Account, ServerError> {
        const ENDPOINT: &str = "GET /api/v1/accounts/verify_credentials";
        let api = self.api(token, ENDPOINT)?;
        let request = api.request(Method::GET, "/api/v1/accounts/verify_credentials");
        let raw: RawAccount = api
            .send(ENDPOINT, request, api.timeout())
            .await?
            .json(ENDPOINT)?;
        Ok(Account {
            id: raw.id,
            acct: raw.acct,
            username: raw.username,
            bot: raw.bot,
        })
    }

    /// Marks the account as a bot: `bot` sent as a JSON boolean, which every server reads
    /// (GoToSocial refuses the form string `"true"`).
    pub async fn set_bot_flag(&self, token: &Token) -> Result<(), ServerError> {
        const ENDPOINT: &str = "PATCH /api/v1/accounts/update_credentials";
        let api = self.api(token, ENDPOINT)?;
        let request = api
            .request(Method::PATCH, "/api/v1/accounts/update_credentials")
            .json(&serde_json::json!({ "bot": true }));
        api.send(ENDPOINT, request, api.timeout()).await?;
        Ok(())
    }

    /// The authenticated client of the rest of the module, for `endpoint`.
    fn api(&self, token: &Token, endpoint: &str) -> Result<Api, ServerError> {
        Api::new(self.base.clone(), token.clone(), self.timeout).map_err(|e| {
            ServerError::new(
                endpoint,
                ErrorKind::InvalidRequest {
                    detail: e.to_string(),
                },
            )
        })
    }
}

// ---------------------------------------------------------------------------------------
// Wire shapes. Forms, as OAuth 2.0 (RFC 6749 §4.1.3) and every server's app endpoint read.

#[derive(Serialize)]
struct AppForm<'a> {
    client_name: &'a str,
    redirect_uris: &'a str,
    scopes: &'a str,
}

#[derive(Serialize)]
struct TokenForm<'a> {
    grant_type: &'a str,
    code: &'a str,
    client_id: &'a str,
    client_secret: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
}

#[derive(Deserialize)]
struct RawApp {
    client_id: String,
    client_secret: String,
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
}

#[derive(Deserialize)]
struct OAuthRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct RawAccount {
    id: String,
    acct: String,
    username: String,
    #[serde(default)]
    bot: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_the_least_the_bot_needs() {
        assert_eq!(
            scopes(true, false).join(" "),
            "profile read:statuses read:notifications write:statuses write:media"
        );
        assert_eq!(
            scopes(false, true).join(" "),
            "read:accounts read:statuses read:notifications write:statuses write:media \
             write:accounts"
        );
        for (profile, bot) in [(true, true), (false, false)] {
            let scopes = scopes(profile, bot);
            assert!(!scopes.contains(&"follow"));
            assert!(!scopes.iter().any(|s| matches!(*s, "read" | "write")));
        }
    }

    #[test]
    fn the_authorization_url_carries_no_secret() {
        let client = OAuthClient::new("https://example.org/", Duration::from_secs(1)).unwrap();
        let app = RegisteredApp {
            client_id: "the id".to_string(),
            client_secret: "the-secret".to_string(),
            scopes: scopes(true, false).join(" "),
        };
        assert_eq!(
            client.authorization_url(&app),
            "https://example.org/oauth/authorize?client_id=the+id\
             &redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob&response_type=code\
             &scope=profile+read%3Astatuses+read%3Anotifications+write%3Astatuses+write%3Amedia"
        );
        assert!(!format!("{app:?}").contains("the-secret"));
    }
}
