//! Where the access token comes from, that it never prints, and how log lines are formatted.

use std::path::{Path, PathBuf};

use perennial::daemon::logging::{
    choose_format, filter_directives, parse_filter, LogEnvironment, LogFormat,
};
use perennial::network::token::{load_token, Token, TokenError, TokenOrigin, TokenSources};
use tracing_subscriber::filter::LevelFilter;

const SECRET: &str = "s3cr3t-T0KEN_value";

/// A folder with `name` holding `contents`, mode 0600 as `login` writes it.
fn file_with(dir: &Path, name: &str, contents: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn exposed(result: Result<Option<Token>, TokenError>) -> Option<String> {
    result
        .unwrap()
        .map(|token: Token| token.expose().to_string())
}

/// Every way the token can be printed leaves it out.
fn assert_hidden(printed: &str) {
    assert!(!printed.contains(SECRET), "the token leaked: {printed}");
    assert!(
        !printed.contains("s3cr3t"),
        "part of the token leaked: {printed}"
    );
}

#[test]
fn the_credential_wins_then_the_environment_then_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    file_with(&credentials, "token", "from-credential\n");
    let token_file = file_with(dir.path(), "token", "from-file\n");
    let all = TokenSources {
        credentials_directory: Some(credentials.clone()),
        env_token: Some("from-env".to_string()),
        token_file: Some(token_file.clone()),
    };
    assert_eq!(
        exposed(load_token(&all)).as_deref(),
        Some("from-credential")
    );

    let no_credential = TokenSources {
        credentials_directory: None,
        ..all.clone()
    };
    assert_eq!(
        exposed(load_token(&no_credential)).as_deref(),
        Some("from-env")
    );

    let only_file = TokenSources {
        token_file: Some(token_file),
        ..TokenSources::default()
    };
    assert_eq!(
        exposed(load_token(&only_file)).as_deref(),
        Some("from-file")
    );

    assert_eq!(exposed(load_token(&TokenSources::default())), None);
}

#[test]
fn a_credentials_directory_without_a_token_falls_through() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    file_with(&credentials, "other-credential", "x");
    let sources = TokenSources {
        credentials_directory: Some(credentials),
        env_token: Some("from-env".to_string()),
        token_file: None,
    };
    assert_eq!(exposed(load_token(&sources)).as_deref(), Some("from-env"));
}

#[test]
fn surrounding_whitespace_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = file_with(dir.path(), "token", &format!("\n  {SECRET} \r\n\n"));
    let from_file = TokenSources {
        token_file: Some(token_file),
        ..TokenSources::default()
    };
    assert_eq!(exposed(load_token(&from_file)).as_deref(), Some(SECRET));
    let from_env = TokenSources {
        env_token: Some(format!("\t{SECRET}\n")),
        ..TokenSources::default()
    };
    assert_eq!(exposed(load_token(&from_env)).as_deref(), Some(SECRET));
}

#[test]
fn an_empty_token_is_an_error_naming_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = file_with(dir.path(), "token", " \n");
    let sources = TokenSources {
        token_file: Some(token_file.clone()),
        ..TokenSources::default()
    };
    let error = load_token(&sources).unwrap_err();
    assert!(
        matches!(&error, TokenError::Empty { origin: TokenOrigin::TokenFile(path) } if *path == token_file)
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the access token in token file {} is empty: the file must hold only the access \
             token; `perennial login --server URL` writes it",
            token_file.display()
        )
    );

    // Set but empty is not "unset": it does not fall through to the token file.
    let sources = TokenSources {
        env_token: Some(String::new()),
        token_file: Some(file_with(dir.path(), "good", "good")),
        ..TokenSources::default()
    };
    assert_eq!(
        load_token(&sources).unwrap_err().to_string(),
        "the access token in $PERENNIAL_TOKEN is empty: set PERENNIAL_TOKEN to the access token \
         alone, or unset it to use `token_file`"
    );
}

#[test]
fn a_missing_token_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let sources = TokenSources {
        token_file: Some(missing.clone()),
        ..TokenSources::default()
    };
    let error = load_token(&sources).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "token file {} does not exist: run `perennial login --server URL` to create it, or \
             correct `token_file` in [server]",
            missing.display()
        )
    );
}

#[test]
fn an_unreadable_token_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: opening works, reading fails, even as root.
    let folder = dir.path().join("token");
    std::fs::create_dir(&folder).unwrap();
    let sources = TokenSources {
        token_file: Some(folder.clone()),
        ..TokenSources::default()
    };
    let message = load_token(&sources).unwrap_err().to_string();
    let expected_start = format!(
        "cannot read the access token from token file {}: ",
        folder.display()
    );
    assert!(message.starts_with(&expected_start), "{message}");
    assert!(
        message.ends_with("; check that the user perennial runs as can read it"),
        "{message}"
    );
}

#[test]
fn a_shared_token_file_still_loads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token_file = file_with(dir.path(), "token", "shared");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sources = TokenSources {
        token_file: Some(token_file),
        ..TokenSources::default()
    };
    assert_eq!(exposed(load_token(&sources)).as_deref(), Some("shared"));
}

#[test]
fn the_token_never_appears_in_debug_or_error_output() {
    let token = Token::new(SECRET);
    assert_eq!(format!("{token:?}"), "Token([redacted])");
    assert_eq!(format!("{token}"), "[redacted]");
    assert_hidden(&format!("{token:?} {token} {token:#?}"));

    let sources = TokenSources {
        credentials_directory: None,
        env_token: Some(SECRET.to_string()),
        token_file: Some(PathBuf::from("/etc/perennial/token")),
    };
    assert_hidden(&format!("{sources:?} {sources:#?}"));

    let dir = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();
    for contents in [
        format!("{SECRET} {SECRET}"),
        format!("{SECRET}\nsecond line"),
        format!("{SECRET}\u{e9}"),
        "   ".to_string(),
    ] {
        let env = TokenSources {
            env_token: Some(contents.clone()),
            ..TokenSources::default()
        };
        errors.push(load_token(&env).unwrap_err());
        let credentials = dir.path().join("credentials");
        file_with(&credentials, "token", &contents);
        let credential = TokenSources {
            credentials_directory: Some(credentials),
            ..TokenSources::default()
        };
        errors.push(load_token(&credential).unwrap_err());
        let file = TokenSources {
            token_file: Some(file_with(dir.path(), "token", &contents)),
            ..TokenSources::default()
        };
        errors.push(load_token(&file).unwrap_err());
    }
    let missing = TokenSources {
        env_token: None,
        token_file: Some(dir.path().join(SECRET.replace("s3cr3t", "missing"))),
        ..TokenSources::default()
    };
    errors.push(load_token(&missing).unwrap_err());
    assert_eq!(errors.len(), 13);
    for error in &errors {
        assert_hidden(&format!("{error:?} {error:#?} {error}"));
    }
    let malformed = errors
        .iter()
        .filter(|error| matches!(error, TokenError::Malformed { .. }))
        .count();
    assert_eq!(malformed, 9);
}

fn environment(journal_stream: Option<&str>, terminal: bool, no_color: bool) -> LogEnvironment {
    LogEnvironment {
        journal_stream: journal_stream.map(str::to_string),
        stderr_device_inode: Some((8, 4242)),
        stderr_is_terminal: terminal,
        no_color,
    }
}

#[test]
fn log_format_for_each_place_stderr_goes() {
    let cases = [
        // Under systemd: no timestamps, no colour; the priority prefix only when stderr is
        // the journal stream itself.
        ((Some("8:4242"), false, false), (false, false, true)),
        ((Some("8:4242"), true, false), (false, false, true)),
        ((Some("8:1"), true, false), (false, false, false)),
        ((Some("not a stream"), false, false), (false, false, false)),
        // A terminal: timestamps and colour, unless NO_COLOR.
        ((None, true, false), (true, true, false)),
        ((None, true, true), (true, false, false)),
        // A pipe or a file: timestamps, no colour.
        ((None, false, false), (true, false, false)),
    ];
    for ((journal, terminal, no_color), (timestamps, ansi, journal_priority)) in cases {
        let expected = LogFormat {
            timestamps,
            ansi,
            journal_priority,
        };
        assert_eq!(
            choose_format(&environment(journal, terminal, no_color)),
            expected,
            "JOURNAL_STREAM={journal:?} terminal={terminal} NO_COLOR={no_color}"
        );
    }
}

#[test]
fn log_filter_from_perennial_log_then_rust_log_then_the_default() {
    let info = LevelFilter::INFO;
    assert_eq!(
        filter_directives(Some("debug"), Some("trace"), info),
        "debug"
    );
    assert_eq!(
        filter_directives(None, Some("perennial=trace"), info),
        "perennial=trace"
    );
    assert_eq!(filter_directives(Some("  "), Some("warn"), info), "warn");
    assert_eq!(filter_directives(None, None, info), "info");
    assert_eq!(
        filter_directives(Some(""), Some(""), LevelFilter::DEBUG),
        "debug"
    );
}

/// Targets and levels as `RUST_LOG` writes them are read; span and field filters, which need
/// a regex engine in the binary, are refused, and the default level is used everywhere.
#[test]
fn log_filter_reads_targets_and_levels_and_refuses_span_filters() {
    use tracing::Level;
    let info = LevelFilter::INFO;
    let (filter, error) = parse_filter("perennial=debug,warn", info);
    assert!(error.is_none(), "{error:?}");
    assert!(filter.would_enable("perennial::daemon", &Level::DEBUG));
    assert!(!filter.would_enable("perennial::daemon", &Level::TRACE));
    assert!(filter.would_enable("reqwest", &Level::WARN));
    assert!(!filter.would_enable("reqwest", &Level::INFO));

    let (filter, error) = parse_filter("[reply{mention=1}]=trace", info);
    assert!(error.is_some(), "a span filter is refused");
    assert!(filter.would_enable("perennial", &Level::INFO));
    assert!(!filter.would_enable("perennial", &Level::DEBUG));
}
