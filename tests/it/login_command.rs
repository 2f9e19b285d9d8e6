//! `perennial login`, the real binary against the fake server, the authorization code piped
//! on standard input as an operator pastes it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::fake_server::{FakeOptions, FakeServer, TEST_AUTHORIZATION_CODE, TEST_TOKEN};

/// A generous upper bound for one login; waiting is always on the process.
const BOUND: Duration = Duration::from_secs(60);

const MASTODON_SCOPES: [&str; 5] = [
    "profile",
    "read:statuses",
    "read:notifications",
    "write:statuses",
    "write:media",
];

/// Runs `perennial login --server FAKE ARGS...` in `dir`, with `stdin` as its input.
async fn login(fake_url: &str, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir)
        .args(["login", "--server", fake_url])
        .args(args)
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the perennial binary runs");
    let mut input = child.stdin.take().unwrap();
    // A refusal before the prompt closes stdin early: a failed write is expected then.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("login finishes within the bound")
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Neither stream holds the token, the client secret, nor a piece of the token.
fn assert_no_secret(fake: &FakeServer, output: &Output) {
    let (stdout, stderr) = text(output);
    let mut secrets = vec![TEST_TOKEN.to_string(), TEST_TOKEN[..12].to_string()];
    secrets.extend(
        fake.registered_apps()
            .into_iter()
            .map(|app| app.client_secret),
    );
    for secret in secrets {
        assert!(
            !stdout.contains(&secret) && !stderr.contains(&secret),
            "a secret was printed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The names in `dir`, sorted (a leftover temporary file would show here).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_writes_a_private_token_file_and_never_prints_the_token() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let code = format!("  {TEST_AUTHORIZATION_CODE}\n");
    let output = login(&fake.url(), dir.path(), &["--token-file", "token"], &code).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");

    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{TEST_TOKEN}\n")
    );
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(names(dir.path()), ["token"]);
    assert_no_secret(&fake, &output);
    assert!(
        stdout.contains("logged in as @perennial on http://127.0.0.1:"),
        "{stdout}"
    );

    // Exactly the scopes the bot needs, out of band, under its own name.
    let apps = fake.registered_apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].client_name, "perennial");
    assert_eq!(apps[0].redirect_uris, "urn:ietf:wg:oauth:2.0:oob");
    assert_eq!(apps[0].scopes, MASTODON_SCOPES);
    // The page to open, with the same scopes.
    let authorize = format!(
        "{}/oauth/authorize?client_id={}&redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob\
         &response_type=code\
         &scope=profile+read%3Astatuses+read%3Anotifications+write%3Astatuses+write%3Amedia",
        fake.url(),
        apps[0].client_id
    );
    assert!(stderr.contains(&authorize), "{stderr}");
    // The code as pasted, trimmed, exchanged once.
    let exchanges = fake.token_requests();
    assert_eq!(exchanges.len(), 1);
    assert!(exchanges[0].granted);
    assert_eq!(
        exchanges[0].grant_type.as_deref(),
        Some("authorization_code")
    );
    assert_eq!(exchanges[0].code.as_deref(), Some(TEST_AUTHORIZATION_CODE));
    // Without --bot, the profile is left alone.
    assert!(fake.credentials_updates().is_empty());
    // The token went only in a header, to verify it.
    let verified = fake.requests_to(crate::fake_server::Route::VerifyCredentials);
    assert_eq!(verified.len(), 1);
    assert!(verified[0].authorization_header);
    assert!(fake.requests().iter().all(|r| !r
        .query
        .as_deref()
        .unwrap_or_default()
        .contains(TEST_TOKEN)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_list_the_profile_scope_is_asked_for_read_accounts() {
    let fake = FakeServer::start(FakeOptions::gotosocial());
    let dir = tempfile::tempdir().unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "token"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let apps = fake.registered_apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(
        apps[0].scopes,
        [
            "read:accounts",
            "read:statuses",
            "read:notifications",
            "write:statuses",
            "write:media"
        ]
    );
    assert_no_secret(&fake, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_token_file_is_refused_before_anything_is_asked_of_the_server() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "old-token\n").unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "token"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("token already exists; nothing was changed. Pass --force to replace it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "old-token\n");
    assert_eq!(names(dir.path()), ["token"]);
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_replaces_the_token_file_and_makes_it_private() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "old-token\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "token", "--force"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{TEST_TOKEN}\n")
    );
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(names(dir.path()), ["token"]);
    assert_no_secret(&fake, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_fails_with_the_servers_reason_and_writes_nothing() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "token"],
        "not-the-code\n",
    )
    .await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "error: the server refused the authorization code (invalid_grant): The provided \
             authorization grant is invalid, expired, revoked"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was written"), "{stderr}");
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    assert_eq!(fake.token_requests().len(), 1);
    assert!(!fake.token_requests()[0].granted);
    assert_no_secret(&fake, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_on_standard_input_fails_and_writes_nothing() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let output = login(&fake.url(), dir.path(), &["--token-file", "token"], "").await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no authorization code was given"),
        "{stderr}"
    );
    assert!(names(dir.path()).is_empty());
    assert!(fake.token_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_sets_the_flag_as_a_json_boolean_on_mastodon_and_gotosocial() {
    for options in [FakeOptions::mastodon(), FakeOptions::gotosocial()] {
        let flavour = options.flavour;
        let fake = FakeServer::start(FakeOptions {
            account_bot: false,
            ..options
        });
        let dir = tempfile::tempdir().unwrap();
        let output = login(
            &fake.url(),
            dir.path(),
            &["--token-file", "token", "--bot"],
            TEST_AUTHORIZATION_CODE,
        )
        .await;
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{flavour:?}\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("@perennial is marked as a bot"), "{stdout}");
        let scopes = &fake.registered_apps()[0].scopes;
        assert_eq!(scopes.last().map(String::as_str), Some("write:accounts"));
        assert!(!scopes.iter().any(|s| s == "follow"));
        let updates = fake.credentials_updates();
        assert_eq!(updates.len(), 1, "{flavour:?}");
        assert_eq!(updates[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(updates[0].body, json!({"bot": true}));
        assert!(fake.options().account_bot, "{flavour:?}");
        assert_no_secret(&fake, &output);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bot_an_account_not_marked_as_a_bot_gets_a_note() {
    let fake = FakeServer::start(FakeOptions {
        account_bot: false,
        ..FakeOptions::mastodon()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "token"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("note: @perennial is not marked as a bot"),
        "{stderr}"
    );
    assert!(fake.credentials_updates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_defaults_to_the_configs_token_file() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nurl = \"{}\"\ntoken_file = \"secrets/token\"\n\n[schedule]\ntimezone = \"UTC\"\n",
            fake.url()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let output = login(&fake.url(), dir.path(), &[], TEST_AUTHORIZATION_CODE).await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let token_file = dir.path().join("secrets/token");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{TEST_TOKEN}\n")
    );
    assert_eq!(mode(&token_file), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_in_a_missing_folder_is_refused_before_anything_is_asked() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let output = login(
        &fake.url(),
        dir.path(),
        &["--token-file", "missing/token"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write missing/token") && stderr.contains("create the folder first"),
        "{stderr}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_with_exit_1_and_writes_nothing() {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = login(
        &format!("http://127.0.0.1:{port}"),
        dir.path(),
        &["--token-file", "token"],
        TEST_AUTHORIZATION_CODE,
    )
    .await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to the server"), "{stderr}");
    assert!(names(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_ask_nothing() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let no_server = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .args(["login", "--token-file", "token"])
        .output()
        .unwrap();
    assert_eq!(no_server.status.code(), Some(2));
    let output = login("fosstodon.org", dir.path(), &["--token-file", "token"], "").await;
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--server: the server URL"), "{stderr}");
    assert!(names(dir.path()).is_empty());
    assert!(fake.requests().is_empty());
}
