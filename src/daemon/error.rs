//! Why the daemon stops, as people read it (the token's origin and the fix named), and the
//! exit code each reason gives.

use super::*;

/// Exit codes (product contract): 0 ok, 1 errors found or runtime failure, 2 usage
/// (clap's own), 78 configuration error (sysexits EX_CONFIG, which systemd's
/// `RestartPreventExitStatus=78` uses to stop restarting a misconfigured service).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    /// What clap exits with on a usage error; also used for an argument clap cannot check.
    pub const USAGE: u8 = 2;
    pub const CONFIG: u8 = 78;
}

/// Why the daemon could not run. [`RunError::exit_code`] gives the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The server refuses the token, or it lacks a scope: `problem` says which, `fix` names
    /// the file this daemon's token comes from (never `perennial login` without
    /// `--token-file`, which would write the default file, another account's under the
    /// template unit).
    #[error("{problem}; {fix}")]
    TokenRefused { problem: String, fix: String },
    #[error("the configuration has problems:\n{0}")]
    Config(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("no access token: set it with `perennial login`, `LoadCredential=token:…` (systemd), $PERENNIAL_TOKEN or `token_file` in [server]; or try `perennial run --dry-run`, which needs none")]
    NoToken,
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    State(#[from] StateError),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_)
            | RunError::Token(_)
            | RunError::NoToken
            | RunError::TokenRefused { .. } => exit::CONFIG,
            RunError::Connect(error) if error.is_configuration() => exit::CONFIG,
            RunError::Connect(_) | RunError::State(_) => exit::FAILURE,
        }
    }
}

/// Set by the units to the file their `LoadCredential=token:…` names (for example
/// `/etc/perennial/pyopensci/token`), so that the hint after a refused token names the file
/// this daemon's token comes from: the credential the daemon reads is only a copy.
pub const CREDENTIAL_FILE_ENV_VAR: &str = "PERENNIAL_CREDENTIAL_FILE";

/// The file the token credential was copied from, when the unit says
/// ([`CREDENTIAL_FILE_ENV_VAR`]) and the token does come from the credential.
pub(super) fn credential_file(sources: &TokenSources) -> Option<PathBuf> {
    let dir = sources.credentials_directory.as_ref()?;
    if !dir.join(crate::network::token::CREDENTIAL_NAME).exists() {
        return None;
    }
    std::env::var_os(CREDENTIAL_FILE_ENV_VAR)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// What to do about a refused token, naming where this daemon's token comes from.
pub(super) fn token_fix(sources: &TokenSources, url: &str) -> String {
    let file = credential_file(sources).or_else(|| {
        // Not the credential, not the environment: the config's `token_file`.
        let from_credential = sources
            .credentials_directory
            .as_ref()
            .is_some_and(|dir| dir.join(crate::network::token::CREDENTIAL_NAME).exists());
        (!from_credential && sources.env_token.is_none())
            .then(|| sources.token_file.clone())
            .flatten()
    });
    match file {
        Some(file) => format!(
            "get a new token into the file this daemon reads it from: `sudo perennial login \
             --server {url} --token-file {} --force`, then restart it",
            file.display()
        ),
        None => format!(
            "get a new token with `perennial login --server {url} --token-file FILE` and put it \
             in {}, then restart perennial",
            token_origin(sources)
        ),
    }
}

/// A refused token at start, with the fix naming this daemon's token file.
pub(super) fn token_refused(error: ConnectError, sources: &TokenSources) -> RunError {
    let scopes = "`profile` (or `read:accounts`), `read:statuses`, `read:notifications`, \
                  `write:statuses` and `write:media`";
    match error {
        ConnectError::Unauthorized {
            url,
            status,
            server_message,
        } => RunError::TokenRefused {
            problem: format!(
                "the server at {url} refused the access token (HTTP {status}: \
                 {server_message}); check that it is complete and was granted the scopes \
                 {scopes}"
            ),
            fix: token_fix(sources, &url),
        },
        ConnectError::CannotReadOwnStatuses {
            url,
            status,
            server_message,
        } => RunError::TokenRefused {
            problem: format!(
                "the server at {url} refused to show the account's own statuses to this \
                 token (HTTP {status}: {server_message}); the token needs the scope \
                 `read:statuses` (or `read`)"
            ),
            fix: token_fix(sources, &url),
        },
        other => other.into(),
    }
}

/// Where the token comes from, in words, for the hint when the server refuses it: the
/// first of the sources [`load_token`] reads that holds one.
pub(super) fn token_origin(sources: &TokenSources) -> String {
    if let Some(file) = credential_file(sources) {
        return format!(
            "{} (the file the unit's `LoadCredential=token:…` names)",
            file.display()
        );
    }
    if let Some(dir) = &sources.credentials_directory {
        let path = dir.join("token");
        if path.exists() {
            return format!(
                "the file the unit's `LoadCredential=token:…` names (read from {})",
                path.display()
            );
        }
    }
    if sources.env_token.is_some() {
        return "$PERENNIAL_TOKEN".to_string();
    }
    match &sources.token_file {
        Some(path) => format!("the token file {}", path.display()),
        None => "the token file".to_string(),
    }
}
