//! The access token: where it is read from, and a type that never prints it.
//!
//! Sources, first found wins (README.md, "Running the daemon"):
//!
//! 1. `$CREDENTIALS_DIRECTORY/token`, the systemd credential (`LoadCredential=token:…`).
//!    When the directory is set but holds no `token` (the unit loads other credentials
//!    only), the next source is tried.
//! 2. `$PERENNIAL_TOKEN`. Set but empty is an error, not "unset": an empty variable is
//!    almost always a template that was not filled in, and falling through to another
//!    source would post as whichever account that one belongs to.
//! 3. `token_file` from `[server]` in the config. Missing or unreadable is an error (the
//!    operator asked for it); readable or writable by group or others is only a warning with
//!    the `chmod 600` that fixes it, because refusing to start a daemon that was working
//!    yesterday over a mode bit is worse than the exposure it flags.
//!
//! Surrounding whitespace (the trailing newline of `echo token > file`) is trimmed. What is
//! left must be one run of visible ASCII: a space, line break or other character inside means
//! the file holds something else, and sending it would fail later with a less clear message.
//! No error or log line ever contains the token, nor any part of it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An access token. `Debug` and `Display` print `[redacted]`; only [`Token::expose`] gives
/// the value, and only the server module calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }

    /// The secret itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The environment variable that holds the token when no systemd credential does.
pub const TOKEN_ENV_VAR: &str = "PERENNIAL_TOKEN";

/// The credential's name in `$CREDENTIALS_DIRECTORY` (`LoadCredential=token:/path`).
pub const CREDENTIAL_NAME: &str = "token";

/// Where [`load_token`] may look, gathered once so that tests can build it by hand instead of
/// setting process environment variables.
#[derive(Clone, Default)]
pub struct TokenSources {
    /// `$CREDENTIALS_DIRECTORY`, set by systemd when the unit loads credentials.
    pub credentials_directory: Option<PathBuf>,
    /// `$PERENNIAL_TOKEN`, untrimmed.
    pub env_token: Option<String>,
    /// `token_file` from the config, already resolved against the config's folder.
    pub token_file: Option<PathBuf>,
}

impl TokenSources {
    /// The real environment, plus the config's `token_file`. An empty `$CREDENTIALS_DIRECTORY`
    /// counts as unset; a `$PERENNIAL_TOKEN` that is not UTF-8 is kept lossily so that
    /// [`load_token`] rejects it with a message instead of ignoring it.
    pub fn from_env(token_file: Option<PathBuf>) -> Self {
        TokenSources {
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            env_token: std::env::var_os(TOKEN_ENV_VAR)
                .map(|value| value.to_string_lossy().into_owned()),
            token_file,
        }
    }
}

impl fmt::Debug for TokenSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSources")
            .field("credentials_directory", &self.credentials_directory)
            .field("env_token", &self.env_token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// Where a token was found, as errors and the log name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `$CREDENTIALS_DIRECTORY/token`.
    Credential(PathBuf),
    /// `$PERENNIAL_TOKEN`.
    Environment,
    /// The config's `token_file`.
    TokenFile(PathBuf),
}

impl TokenOrigin {
    /// What the operator does about an empty or malformed token from here.
    fn how_to_fix(&self) -> &'static str {
        match self {
            TokenOrigin::Credential(_) => {
                "check the file named in the unit's `LoadCredential=token:…`: it must hold only \
                 the access token"
            }
            TokenOrigin::Environment => {
                "set PERENNIAL_TOKEN to the access token alone, or unset it to use `token_file`"
            }
            TokenOrigin::TokenFile(_) => {
                "the file must hold only the access token; `perennial login --server URL` \
                 writes it"
            }
        }
    }
}

impl fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenOrigin::Credential(path) => write!(f, "systemd credential {}", path.display()),
            TokenOrigin::Environment => write!(f, "${TOKEN_ENV_VAR}"),
            TokenOrigin::TokenFile(path) => write!(f, "token file {}", path.display()),
        }
    }
}

/// Why no token could be read. The messages name the source and say what to do; none of them
/// holds the token or a piece of it.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "token file {} does not exist: run `perennial login --server URL` to create it, or \
         correct `token_file` in [server]",
        path.display()
    )]
    TokenFileMissing { path: PathBuf },
    #[error(
        "cannot read the access token from {origin}: {source}; check that the user perennial \
         runs as can read it"
    )]
    Unreadable {
        origin: TokenOrigin,
        #[source]
        source: io::Error,
    },
    #[error("the access token in {origin} is empty: {}", origin.how_to_fix())]
    Empty { origin: TokenOrigin },
    #[error("the access token in {origin} {problem}: {}", origin.how_to_fix())]
    Malformed {
        origin: TokenOrigin,
        problem: &'static str,
    },
}

/// Reads the access token from the first source that has one (see the module docs).
/// `Ok(None)` means there is none anywhere, which `--dry-run` accepts.
pub fn load_token(sources: &TokenSources) -> Result<Option<Token>, TokenError> {
    if let Some(dir) = &sources.credentials_directory {
        let path = dir.join(CREDENTIAL_NAME);
        match File::open(&path) {
            Ok(file) => {
                let origin = TokenOrigin::Credential(path);
                return read_token(file, origin).map(Some);
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(
                    "{} has no `{CREDENTIAL_NAME}` credential; trying ${TOKEN_ENV_VAR}",
                    dir.display()
                );
            }
            Err(source) => {
                let origin = TokenOrigin::Credential(path);
                return Err(TokenError::Unreadable { origin, source });
            }
        }
    }
    if let Some(value) = &sources.env_token {
        let token = validate(value.as_bytes(), TokenOrigin::Environment)?;
        tracing::info!("access token read from ${TOKEN_ENV_VAR}");
        return Ok(Some(token));
    }
    if let Some(path) = &sources.token_file {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(TokenError::TokenFileMissing { path: path.clone() });
            }
            Err(source) => {
                let origin = TokenOrigin::TokenFile(path.clone());
                return Err(TokenError::Unreadable { origin, source });
            }
        };
        // Asked of the open file, not the path, so the mode is that of what is read.
        if let Ok(metadata) = file.metadata() {
            if let Some(warning) = permission_warning(path, file_mode(&metadata)) {
                tracing::warn!("{warning}");
            }
        }
        return read_token(file, TokenOrigin::TokenFile(path.clone())).map(Some);
    }
    Ok(None)
}

fn read_token(mut file: File, origin: TokenOrigin) -> Result<Token, TokenError> {
    let mut bytes = Vec::new();
    if let Err(source) = file.read_to_end(&mut bytes) {
        return Err(TokenError::Unreadable { origin, source });
    }
    let token = validate(&bytes, origin.clone())?;
    tracing::info!("access token read from {origin}");
    Ok(token)
}

/// Trims, then accepts only a non-empty run of visible ASCII (what every server's tokens are
/// made of, and all an `Authorization` header can carry).
fn validate(bytes: &[u8], origin: TokenOrigin) -> Result<Token, TokenError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let problem = "is not valid UTF-8";
        return Err(TokenError::Malformed { origin, problem });
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(TokenError::Empty { origin });
    }
    if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
        let problem = "contains a space, line break or other character that cannot be part of a \
                       token";
        return Err(TokenError::Malformed { origin, problem });
    }
    Ok(Token::new(text))
}

#[cfg(unix)]
fn file_mode(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode()
}

#[cfg(not(unix))]
fn file_mode(_metadata: &std::fs::Metadata) -> u32 {
    0o600
}

/// The warning for a token file that group or others may read or write (`mode & 0o077`), with
/// the command that fixes it; `None` when the mode is private.
pub fn permission_warning(path: &Path, mode: u32) -> Option<String> {
    if mode & 0o077 == 0 {
        return None;
    }
    Some(format!(
        "token file {path} can be read or changed by other users (mode {mode:03o}): run \
         `chmod 600 {path}` so only its owner can",
        path = path.display(),
        mode = mode & 0o777,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_modes_give_no_warning() {
        assert_eq!(permission_warning(Path::new("/t"), 0o100600), None);
        assert_eq!(permission_warning(Path::new("/t"), 0o400), None);
        assert_eq!(permission_warning(Path::new("/t"), 0o700), None);
    }

    #[test]
    fn shared_modes_warn_with_the_fix() {
        assert_eq!(
            permission_warning(Path::new("/etc/perennial/token"), 0o100644).as_deref(),
            Some(
                "token file /etc/perennial/token can be read or changed by other users (mode \
                 644): run `chmod 600 /etc/perennial/token` so only its owner can"
            )
        );
        assert!(permission_warning(Path::new("/t"), 0o620).is_some());
        assert!(permission_warning(Path::new("/t"), 0o601).is_some());
    }

    #[test]
    fn validation_trims_and_rejects_what_a_token_cannot_hold() {
        let origin = || TokenOrigin::Environment;
        assert_eq!(
            validate(b"  abc-DEF_123\r\n", origin()).unwrap().expose(),
            "abc-DEF_123"
        );
        assert!(matches!(
            validate(b" \n\t", origin()),
            Err(TokenError::Empty { .. })
        ));
        assert!(matches!(
            validate(b"", origin()),
            Err(TokenError::Empty { .. })
        ));
        for bad in [&b"two\nlines"[..], b"a b", b"caf\xc3\xa9", b"\xff\xfe"] {
            assert!(
                matches!(validate(bad, origin()), Err(TokenError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }
}
