//! `perennial login`: gets the daemon its access token. Registers an app with the scopes the
//! bot needs, shows the page where the account's owner authorizes it, reads the code they
//! copy from that page (one line on standard input, so it can be piped), checks the token,
//! and writes it to the token file with mode 0600. The token is never printed nor logged.
//!
//! The token file is checked first (it must not exist without `--force`, and its folder must
//! be writable), so a refusal costs no registered app and no trip to the browser. It is
//! written atomically: a private temporary file in the same folder, synced, then linked into
//! place (which fails if the file appeared meanwhile) or, with `--force`, renamed over it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use crate::commands::cli::{exit, LoginArgs};
use crate::network::mastodon::oauth::{scopes, CodeError, OAuthClient};
use crate::network::mastodon::DEFAULT_REQUEST_TIMEOUT;
use crate::network::token::Token;
use crate::posts::config::Config;

/// Where the token goes when neither `--token-file` nor the config's `token_file` says: the
/// file `perennial.service` loads as its credential (`LoadCredential=token:/etc/perennial/token`).
pub const DEFAULT_TOKEN_FILE: &str = "/etc/perennial/token";

/// Why login stopped: a message for the operator and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

pub fn run(config_path: &Path, args: &LoginArgs) -> u8 {
    match login(config_path, args) {
        Ok(()) => exit::OK,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.code
        }
    }
}

fn login(config_path: &Path, args: &LoginArgs) -> Result<(), Failure> {
    let client = OAuthClient::new(&args.server, DEFAULT_REQUEST_TIMEOUT)
        .map_err(|error| Failure::new(exit::USAGE, format!("--server: {error}")))?;
    let path = token_file_path(config_path, args)?;
    let token_file = TokenFile::prepare(path, args.force)?;
    let server = client.base().to_string();
    let failed =
        |error: &dyn std::fmt::Display| Failure::new(exit::FAILURE, format!("{server}: {error}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| failed(&error))?;

    let app = runtime
        .block_on(async {
            let knows_profile = client.knows_profile_scope().await?;
            client.register_app(&scopes(knows_profile, args.bot)).await
        })
        .map_err(|error| failed(&error))?;
    eprintln!(
        "Open this page in a browser where you are logged in as the bot's account, authorize \
         \"perennial\" (scopes: {}), and paste the code the page shows:\n\n  {}\n",
        app.scopes(),
        client.authorization_url(&app)
    );
    eprint!("code: ");
    let _ = io::stderr().flush();
    let code = read_code()?;

    let token = runtime
        .block_on(client.exchange_code(&app, &code))
        .map_err(|error| match error {
            CodeError::Refused { .. } => Failure::new(
                exit::FAILURE,
                format!(
                    "{error}. Nothing was written; run `perennial login` again and paste the \
                     whole code, within 10 minutes"
                ),
            ),
            other => failed(&format!("{other}. Nothing was written")),
        })?;
    let account = runtime.block_on(client.verify(&token)).map_err(|error| {
        failed(&format!(
            "checking the new token: {error}. Nothing was written"
        ))
    })?;
    token_file.write(&token)?;
    println!("logged in as @{} on {server}", account.acct);
    println!("token written to {} (mode 0600)", token_file.path.display());

    if args.bot {
        runtime
            .block_on(client.set_bot_flag(&token))
            .map_err(|error| {
                Failure::new(
                    exit::FAILURE,
                    format!(
                        "the token is written, but the bot flag could not be set: {error}. Tick \
                         \"This is an automated account\" in the account's profile settings"
                    ),
                )
            })?;
        println!("@{} is marked as a bot", account.acct);
    } else if !account.bot {
        eprintln!(
            "note: @{} is not marked as a bot; tick \"This is an automated account\" in its \
             profile settings (or log in again with --bot --force)",
            account.acct
        );
    }
    Ok(())
}

/// `--token-file`, else `token_file` from the config (when the config file exists), else
/// [`DEFAULT_TOKEN_FILE`]. A config that exists but cannot be read stops here (exit 78):
/// guessing could put the token where the daemon will not look.
fn token_file_path(config_path: &Path, args: &LoginArgs) -> Result<PathBuf, Failure> {
    if let Some(path) = &args.token_file {
        return Ok(path.clone());
    }
    if config_path.is_file() {
        let config = Config::load(config_path).map_err(|errors| {
            let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Failure::new(
                exit::CONFIG,
                format!(
                    "{} has problems, so its token_file is unknown (fix it, or pass \
                     --token-file):\n{}",
                    config_path.display(),
                    problems.join("\n")
                ),
            )
        })?;
        if let Some(path) = config.server.token_file {
            return Ok(path);
        }
    }
    Ok(PathBuf::from(DEFAULT_TOKEN_FILE))
}

/// One line from standard input, trimmed; empty is an error.
fn read_code() -> Result<String, Failure> {
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).map_err(|error| {
        Failure::new(
            exit::FAILURE,
            format!("cannot read the code from standard input: {error}"),
        )
    })?;
    let code = line.trim();
    if code.is_empty() {
        return Err(Failure::new(
            exit::FAILURE,
            "no authorization code was given (standard input was empty); nothing was written",
        ));
    }
    Ok(code.to_string())
}

/// The token file to write, checked before anything is asked of the server.
struct TokenFile {
    path: PathBuf,
    replace: bool,
}

impl TokenFile {
    /// Refuses an existing file unless `replace`, and makes sure the folder takes a new file
    /// (by creating and removing one).
    fn prepare(path: PathBuf, replace: bool) -> Result<TokenFile, Failure> {
        if !replace && path.symlink_metadata().is_ok() {
            return Err(Failure::new(
                exit::FAILURE,
                format!(
                    "{} already exists; nothing was changed. Pass --force to replace it (the \
                     old token stays valid until it is revoked in the account's settings, \
                     under Authorized apps)",
                    path.display()
                ),
            ));
        }
        let token_file = TokenFile { path, replace };
        let probe = token_file.temporary_path();
        create_private(&probe).map_err(|error| token_file.cannot_write(&error))?;
        let _ = fs::remove_file(&probe);
        Ok(token_file)
    }

    /// Writes `token` and a newline: a private temporary file, synced, then moved into place.
    fn write(&self, token: &Token) -> Result<(), Failure> {
        let temporary = self.temporary_path();
        let result = self.write_through(&temporary, token);
        let _ = fs::remove_file(&temporary);
        result.map_err(|error| self.cannot_write(&error))
    }

    fn write_through(&self, temporary: &Path, token: &Token) -> io::Result<()> {
        let mut file = create_private(temporary)?;
        file.write_all(token.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        if self.replace {
            fs::rename(temporary, &self.path)?;
        } else {
            // Unlike a rename, a hard link never replaces a file that appeared meanwhile.
            fs::hard_link(temporary, &self.path)?;
        }
        File::open(self.folder())?.sync_all()
    }

    fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        }
    }

    /// `.NAME.PID.tmp` beside the token file: same file system, so the final move is atomic.
    fn temporary_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "token".to_string());
        self.folder()
            .join(format!(".{name}.{}.tmp", std::process::id()))
    }

    fn cannot_write(&self, error: &io::Error) -> Failure {
        let hint = match error.kind() {
            io::ErrorKind::NotFound => format!(
                "; create the folder first (`install -d -m 0755 {}`) or pass --token-file",
                self.folder().display()
            ),
            io::ErrorKind::PermissionDenied => {
                "; run it as a user who may write there (e.g. with sudo) or pass --token-file"
                    .to_string()
            }
            io::ErrorKind::AlreadyExists => {
                "; it appeared while logging in: pass --force to replace it".to_string()
            }
            _ => String::new(),
        };
        Failure::new(
            exit::FAILURE,
            format!("cannot write {}: {error}{hint}", self.path.display()),
        )
    }
}

/// A new file that only its owner may read or write, from the moment it exists.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
