//! The real `perennial run` binary against the fake server on 127.0.0.1, as systemd runs
//! it: `NOTIFY_SOCKET`, SIGTERM, a post file added while it runs.

use std::process::Stdio;
use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::fake_server::{FakeOptions, FakeServer};
use crate::support::sigterm;

/// A generous upper bound for anything the binary does; waiting is always on an event.
const BOUND: Duration = Duration::from_secs(60);

async fn next_message(socket: &UnixDatagram) -> String {
    let mut buffer = vec![0u8; 4096];
    let length = tokio::time::timeout(BOUND, socket.recv(&mut buffer))
        .await
        .expect("a notification within the bound")
        .unwrap();
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_posts_every_two_seconds_notifies_systemd_and_stops_on_sigterm() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake.url(), "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .args(["run"])
        .env("PERENNIAL_TOKEN", fake.token())
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("STATE_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    assert_eq!(next_message(&socket).await, "READY=1");
    let status = next_message(&socket).await;
    assert!(
        status.starts_with("STATUS=next: tips/first at "),
        "{status}"
    );

    let first = tokio::time::timeout(BOUND, fake.wait_for_statuses(1))
        .await
        .unwrap();
    assert_eq!(first[0].text, "The first post.");

    // A new post file is picked up without a restart (the watcher), and, being never
    // posted, goes out before the first post repeats.
    std::fs::write(
        dir.path().join("posts/tips/second.md"),
        "+++\ntitle = \"second\"\n+++\nThe second post.\n",
    )
    .unwrap();
    let statuses = tokio::time::timeout(BOUND, async {
        loop {
            let statuses = fake.wait_for_statuses(fake.statuses().len() + 1).await;
            if statuses.iter().any(|s| s.text == "The second post.") {
                return statuses;
            }
        }
    })
    .await
    .expect("the new post goes out");
    assert!(statuses.len() >= 2);

    // Issue 16 item 4: `perennial reload` (ExecReload= on systemd 252) returns after the
    // reload: RELOADING=1 and READY=1 are sent by then.
    let output = reload_and_wait(dir.path(), child.id().unwrap()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let during = queued_messages(&socket);
    let reloading = during
        .iter()
        .position(|message| message.starts_with("RELOADING=1\nMONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no RELOADING=1 before reload returned: {during:?}"));
    assert!(
        during[reloading..]
            .iter()
            .any(|message| message == "READY=1"),
        "no READY=1 after RELOADING=1 before reload returned: {during:?}"
    );

    assert!(sigterm(child.id().unwrap()));
    let output = tokio::time::timeout(BOUND, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.code(), Some(0));
    // STOPPING=1, then (issue 16 item 6) STATUS=stopped, so that `systemctl status` of the
    // stopped unit does not show the next post as if it were still coming.
    loop {
        if next_message(&socket).await == "STOPPING=1" {
            break;
        }
    }
    assert_eq!(next_message(&socket).await, "STATUS=stopped");

    // Each post went out at most once per slot, and the history says the same.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/state.json")).unwrap())
            .unwrap();
    let history = state["history"].as_array().unwrap();
    assert_eq!(history.len(), fake.statuses().len());
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        !stderr.contains(&fake.token()),
        "the token never appears in the logs"
    );
}

#[test]
fn run_without_a_token_exits_78_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"http://127.0.0.1:9\"\n\n[posts]\ndir = \"posts\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("posts")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .arg("run")
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no access token"), "{stderr}");
    assert!(stderr.contains("--dry-run"), "{stderr}");
}

/// Issue 14 item 15: `perennial post` had no SIGTERM handler and was killed mid-thread. Now
/// SIGTERM while it waits to send the next part stops it with exit 0, the thread stays in
/// flight, and the next `perennial post` of the same post sends the rest, once, without
/// posting the whole post again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perennial_post_stops_on_sigterm_mid_thread_and_the_next_run_finishes_it_once() {
    use crate::fake_server::{Fault, Quirk, Route};
    let fake = FakeServer::start(FakeOptions::gotosocial().max_characters(500));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nurl = \"{}\"\n\n[posts]\ndir = \"posts\"\nhashtags = []\n\n[schedule]\ntimezone = \"UTC\"\nevery = \"6h\"\n\n[state]\ndir = \"state\"\n\n[mentions]\nenabled = false\n",
            fake.url()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("posts/long")).unwrap();
    let sentence = "Reproducible research needs packages that install cleanly, document their API and keep a changelog.";
    std::fs::write(
        dir.path().join("posts/long/thread.md"),
        format!(
            "+++\ntitle = \"thread\"\nlong_posts = \"thread\"\n+++\n{}\n",
            [sentence; 11].join(" ")
        ),
    )
    .unwrap();
    let post = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"));
        command
            .current_dir(dir.path())
            .args(["post", "long/thread"])
            .env("PERENNIAL_TOKEN", fake.token())
            .env_remove("STATE_DIRECTORY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    // The first part goes through; the second is asked to wait a minute.
    fake.inject_quirk(Route::PostStatus, Quirk::PassThrough);
    fake.inject(
        Route::PostStatus,
        Fault::RateLimited {
            reset_after: Duration::ZERO,
            retry_after_secs: Some(60),
        },
    );
    let first = post().spawn().unwrap();
    tokio::time::timeout(BOUND, fake.wait_for_requests(Route::PostStatus, 2))
        .await
        .expect("the second part was asked for");
    assert!(sigterm(first.id().unwrap()));
    let output = tokio::time::timeout(BOUND, first.wait_with_output())
        .await
        .expect("SIGTERM stops it at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert_eq!(fake.statuses().len(), 1, "only the first part is out");

    let output = tokio::time::timeout(BOUND, post().output())
        .await
        .expect("the second run finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let statuses = fake.statuses();
    assert!(statuses.len() >= 3, "a thread: {statuses:#?}");
    let total = statuses.len();
    for (index, status) in statuses.iter().enumerate() {
        assert!(
            status.text.ends_with(&format!("({}/{total})", index + 1)),
            "each part once, in order: {statuses:#?}"
        );
        if index > 0 {
            assert_eq!(
                status.in_reply_to_id.as_deref(),
                Some(statuses[index - 1].id.as_str())
            );
        }
    }
}

/// Issue 14 item 7: a token that cannot read the account's own statuses could never verify
/// a post whose answer was lost, so the daemon refuses to start with it: exit 78, the scope
/// named, and nothing posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_a_token_that_cannot_read_its_own_statuses_exits_78() {
    use crate::fake_server::{Quirk, Route};
    let fake = FakeServer::start(FakeOptions::gotosocial());
    fake.inject_quirk(Route::OwnStatuses, Quirk::OutsideScopes);
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake.url(), "");
    let output = tokio::time::timeout(
        BOUND,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
            .current_dir(dir.path())
            .arg("run")
            .env("PERENNIAL_TOKEN", fake.token())
            .env_remove("STATE_DIRECTORY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .output(),
    )
    .await
    .expect("the daemon stops at once")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("read:statuses"), "{stderr}");
    assert!(fake.statuses().is_empty());
    assert!(!stderr.contains(&fake.token()));
}

/// The README's first command, `cargo run --release -- run --dry-run`, as a user runs it (the
/// binary, in the repository, no token, until stopped): it shows the next post's text whole,
/// every status of it as `preview` composes it, with the plan after it, each line once and
/// times in the schedule's zone; SIGTERM stops it with exit 0.
#[test]
fn run_dry_run_on_the_bundled_config_shows_the_next_post_whole() {
    use std::io::BufRead;

    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(crate::support::repository_root())
        .args(["run", "--dry-run"])
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("STATE_DIRECTORY", state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Everything up to the line that ends the start (the daemon then waits for the slot).
    let mut shown = Vec::new();
    loop {
        let Ok(line) = lines.recv_timeout(BOUND) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the dry run did not show the next post within the bound:\n{}",
                shown.join("\n")
            );
        };
        let end = line.starts_with("(each post is printed whole");
        shown.push(line);
        if end {
            break;
        }
    }
    assert!(sigterm(child.id()));
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stdout = shown.join("\n");
    assert!(stdout.starts_with("dry run: nothing is sent"), "{stdout}");
    // The next post, named with its time in the schedule's zone (America/Denver).
    let heading = shown
        .iter()
        .find(|line| line.starts_with("=== next: "))
        .unwrap_or_else(|| panic!("no next post in:\n{stdout}"));
    assert!(
        heading.contains(" MST (") || heading.contains(" MDT ("),
        "{heading}"
    );
    let id = heading["=== next: ".len()..].split(' ').next().unwrap();
    // Its text in full: every status exactly as `preview --json` composes it.
    let preview = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(crate::support::repository_root())
        .args(["preview", "--json", id])
        .env("STATE_DIRECTORY", state.path())
        .output()
        .unwrap();
    let preview: serde_json::Value = serde_json::from_slice(&preview.stdout).unwrap();
    let statuses = preview[0]["statuses"].as_array().unwrap();
    assert!(!statuses.is_empty());
    for (index, status) in statuses.iter().enumerate() {
        let text = status["text"].as_str().unwrap();
        assert!(
            stdout.contains(text),
            "status {index} of {id}:\n{text}\nnot in:\n{stdout}"
        );
        let length = status["length"].as_u64().unwrap();
        assert!(
            stdout.contains(&format!(
                "--- status {} of {}: {length}/500 characters",
                index + 1,
                statuses.len()
            )),
            "{stdout}"
        );
    }
    for media in preview[0]["media"].as_array().unwrap() {
        assert!(stdout.contains(media["alt"].as_str().unwrap()), "{stdout}");
    }
    // Then the plan after it, and each line once: the next post is not also a log line.
    assert!(stdout.contains("\nthen:\n"), "{stdout}");
    assert!(!stderr.contains("next:"), "{stderr}");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[test]
fn run_dry_run_once_on_the_bundled_config_says_what_comes_next() {
    // `--once` so that it exits.
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(crate::support::repository_root())
        .args(["run", "--dry-run", "--once"])
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("STATE_DIRECTORY", state.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("dry run: nothing is sent"), "{stdout}");
    assert!(stdout.contains("\n=== next: "), "{stdout}");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_sends_one_post_now_and_records_it() {
    let fake = FakeServer::start(FakeOptions::gotosocial());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[server]\nurl = \"{}\"\n\n[posts]\ndir = \"posts\"\n\n[state]\ndir = \"state\"\n",
            fake.url()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("posts/tips")).unwrap();
    std::fs::write(
        dir.path().join("posts/tips/now.md"),
        "+++\ntitle = \"now\"\nhashtags = []\n+++\nPosted by hand.\n",
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .args(["post", "tips/now"])
        .env("PERENNIAL_TOKEN", fake.token())
        .env_remove("STATE_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let statuses = fake.statuses();
    assert_eq!(statuses.len(), 1);
    assert!(
        statuses[0].text.starts_with("Posted by hand."),
        "{}",
        statuses[0].text
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["history"][0]["reason"], "manual");
    assert_eq!(state["history"][0]["statuses"][0], statuses[0].id.as_str());
    // An unknown post is an error that names it.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .args(["post", "tips/nope"])
        .env("PERENNIAL_TOKEN", fake.token())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no post `tips/nope`"));
    assert_eq!(fake.statuses().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_with_a_token_prints_the_replies_the_bundled_guides_give_and_sends_nothing() {
    use perennial::posts::config::Visibility;
    let fake = FakeServer::start(FakeOptions::mastodon());
    fake.add_mention(
        "alice@example.org",
        "<p><span class=\"h-card\"><a class=\"u-url mention\" href=\"https://example.social/@bot\">@<span>bot</span></a></span> how do I package my Python code?</p>",
        Visibility::Public,
        None,
        false,
    );
    fake.add_mention(
        "bob",
        "<p>@bot how does peer review work?</p>",
        Visibility::Direct,
        None,
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, fake.bundled_config()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .args(["run", "--dry-run", "--once", "--config"])
        .arg(&config)
        .env("PERENNIAL_TOKEN", fake.token())
        .env("STATE_DIRECTORY", state.path())
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("would reply to @alice@example.org (unlisted"),
        "{stdout}"
    );
    assert!(stdout.contains("would reply to @bob (direct"), "{stdout}");
    let alice = &stdout[stdout.find("would reply to @alice").unwrap()..];
    let alice = &alice[..alice.find("\n---").unwrap()];
    assert!(
        alice.contains("https://www.pyopensci.org/python-package-guide/"),
        "{alice}"
    );
    assert!(!alice.contains("software-peer-review"), "{alice}");
    let bob = &stdout[stdout.find("would reply to @bob").unwrap()..];
    let bob = &bob[..bob.find("\n---").unwrap()];
    assert!(
        bob.contains("https://www.pyopensci.org/software-peer-review/"),
        "{bob}"
    );
    assert!(!bob.contains("how does"), "never echoes the mention: {bob}");
    assert!(fake.statuses().is_empty(), "a dry run sends nothing");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
    assert!(!stdout.contains(&fake.token()) && !stderr.contains(&fake.token()));
}

#[test]
fn dry_run_without_a_token_says_mentions_are_off() {
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(crate::support::repository_root())
        .args(["run", "--dry-run", "--once"])
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("STATE_DIRECTORY", state.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("dry run: mentions are off: no access token"),
        "{stdout}"
    );
}

/// A config for the binary tests below: `url` as the server, posts in `posts/` (one post),
/// state in `state/`.
fn write_config(dir: &std::path::Path, url: &str, extra: &str) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[server]\nurl = \"{url}\"\n\n[posts]\ndir = \"posts\"\n\n[schedule]\ntimezone = \"UTC\"\nevery = \"2s\"\n\n[state]\ndir = \"state\"\n{extra}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("posts/tips")).unwrap();
    std::fs::write(
        dir.join("posts/tips/first.md"),
        "+++\ntitle = \"first\"\n+++\nThe first post.\n",
    )
    .unwrap();
}

/// Every notification already queued on `socket`, without waiting.
fn queued_messages(socket: &UnixDatagram) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while let Ok(length) = socket.try_recv(&mut buffer) {
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    messages
}

/// `perennial reload --pid PID` in `dir` (the state directory comes from its config).
async fn reload_and_wait(dir: &std::path::Path, pid: u32) -> std::process::Output {
    tokio::time::timeout(
        BOUND,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
            .current_dir(dir)
            .args(["reload", "--pid", &pid.to_string()])
            .env_remove("STATE_DIRECTORY")
            .output(),
    )
    .await
    .expect("perennial reload returns within the bound")
    .unwrap()
}

/// Issue 16 items 2, 3 and 6: under systemd a broken config at start was logged twice (the
/// second copy at priority 6, by `eprintln!`), and only the first line of the error carried
/// priority 3, so `journalctl -p warning` hid the lines saying what was wrong; and the unit
/// kept its last `STATUS=`. Here stderr is the "journal stream" (`JOURNAL_STREAM` names its
/// device and inode, as systemd sets it): every line carries `<3>`, each problem appears once,
/// and the last notification says it stopped and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_is_logged_once_every_line_at_error_priority_and_status_says_stopped() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", "");
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"http://127.0.0.1:9\"\nunknown_key = 1\n\n[posts]\ndir = \"posts\"\n",
    )
    .unwrap();
    let stderr_path = dir.path().join("journal-stream");
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let metadata = stderr_file.metadata().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let status = tokio::time::timeout(
        BOUND,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
            .current_dir(dir.path())
            .arg("run")
            .env("PERENNIAL_TOKEN", "unused")
            .env(
                "JOURNAL_STREAM",
                format!("{}:{}", metadata.dev(), metadata.ino()),
            )
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("STATE_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(stderr_file)
            .status(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status.code(), Some(78));
    let journal = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!journal.is_empty());
    for line in journal.lines() {
        assert!(
            line.starts_with("<3>"),
            "not at priority 3: {line:?}\n{journal}"
        );
    }
    assert_eq!(
        journal.matches("the configuration has problems").count(),
        1,
        "{journal}"
    );
    assert_eq!(journal.matches("unknown_key").count(), 1, "{journal}");
    assert!(
        journal.lines().any(|line| line.starts_with("<3>")
            && line.contains("config.toml:3:1")
            && line.contains("unknown_key")),
        "the problem's own line is at priority 3: {journal}"
    );
    // Nothing was ready; the only word to systemd is why it stopped.
    assert_eq!(
        queued_messages(&socket),
        ["STATUS=stopped: the configuration has problems (see the journal)"]
    );
}

/// Issue 16 item 5: the hint after a refused token said `perennial login --server …`, which
/// writes the default token file, another account's under `perennial@.service`. With the
/// token from the unit's credential, the hint names the file the unit loads it from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_names_the_file_the_unit_loads_it_from() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &fake.url(), "");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("token"), "not-the-right-token\n").unwrap();
    let output = tokio::time::timeout(
        BOUND,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
            .current_dir(dir.path())
            .arg("run")
            .env("CREDENTIALS_DIRECTORY", &credentials)
            .env(
                perennial::daemon::CREDENTIAL_FILE_ENV_VAR,
                "/etc/perennial/second/token",
            )
            .env_remove("PERENNIAL_TOKEN")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("refused the access token"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "perennial login --server {} --token-file /etc/perennial/second/token --force",
            fake.url()
        )),
        "{stderr}"
    );
    // No hint without --token-file, which would write /etc/perennial/token.
    assert!(
        !stderr.contains(&format!("perennial login --server {}`", fake.url())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("refused the access token").count(), 1);
    assert!(!stderr.contains("not-the-right-token"));
    assert!(fake.statuses().is_empty());
}

/// Issue 16 items 8 and 4: with the server unreachable at start, the daemon is ready at once
/// (STATUS= says it waits for the server) instead of holding the unit "activating" for up to
/// `TimeoutStartSec=`; `perennial reload` (the units' `ExecReload=` on systemd 252) returns
/// only after the daemon has reloaded, even while it waits for the server; SIGTERM stops it
/// with `STATUS=stopped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_without_the_server_and_reload_returns_once_reloaded() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &url, "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .arg("run")
        .env("PERENNIAL_TOKEN", "some-token")
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("STATE_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let waiting = next_message(&socket).await;
    assert!(
        waiting.starts_with(&format!(
            "STATUS=waiting for the server: cannot reach the server at {url}"
        )),
        "{waiting}"
    );
    assert_eq!(next_message(&socket).await, "READY=1");

    let output = reload_and_wait(dir.path(), pid).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Sent before `perennial reload` returned: already queued.
    let during: Vec<String> = queued_messages(&socket)
        .into_iter()
        .filter(|message| !message.starts_with("STATUS=waiting"))
        .collect();
    assert_eq!(during.len(), 2, "{during:?}");
    assert!(
        during[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{during:?}"
    );
    assert_eq!(during[1], "READY=1");
    let marker = std::fs::read_to_string(dir.path().join("state/reloaded")).unwrap();
    assert_eq!(marker, format!("{pid} 1\n"));

    assert!(sigterm(pid));
    let status = tokio::time::timeout(BOUND, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let last = loop {
        let message = next_message(&socket).await;
        if !message.starts_with("STATUS=waiting") {
            break message;
        }
    };
    assert_eq!(last, "STATUS=stopped");
}

/// `perennial reload` of a process that is not there fails at once, saying so.
#[test]
fn reload_of_no_daemon_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "http://127.0.0.1:9", "");
    // A process that has exited: its pid is free (and not reused this fast).
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir.path())
        .args(["reload", "--pid", &pid.to_string(), "--timeout", "5"])
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot send SIGHUP"), "{stderr}");
}
