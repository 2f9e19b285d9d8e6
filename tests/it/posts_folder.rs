//! Regression tests for issue 15: `posts/` arrives by pull request, so it is untrusted input
//! to a daemon that holds an access token. Nothing it names may reach outside it, every read
//! is bounded, reload never dies, and the bundled example never rots. Each test is named after
//! the bug it pins.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use perennial::clock::TokioClock;
use perennial::config::Visibility;
use perennial::daemon::RunOptions;

use crate::daemon_runs::{fake, ts, Bot, PATIENCE};
use crate::fake_server::{FakeOptions, FakeServer};
use crate::support::sigterm;

/// Real time: only reached when something is broken.
const BOUND: Duration = Duration::from_secs(60);

/// Waits until a status with exactly `text` is on the fake server.
async fn wait_for_text(fake: &FakeServer, text: &str) {
    tokio::time::timeout(BOUND, async {
        loop {
            let seen = fake.statuses().len();
            if fake.statuses().iter().any(|s| s.text == text) {
                return;
            }
            fake.wait_for_statuses(seen + 1).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{text:?} was not posted within {BOUND:?}"));
}

fn write_post(folder: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(folder.join("tips")).unwrap();
    std::fs::write(
        folder.join(format!("tips/{name}.md")),
        format!("+++\ntitle = \"{name}\"\n+++\n{text}\n"),
    )
    .unwrap();
}

fn config(fake: &FakeServer, posts: &str) -> String {
    format!(
        "[server]\nurl = \"{}\"\n\n[posts]\ndir = \"{posts}\"\nhashtags = []\n\n[schedule]\ntimezone = \"UTC\"\nevery = \"2s\"\n\n[state]\ndir = \"state\"\n\n[mentions]\nenabled = false\n",
        fake.url()
    )
}

/// `perennial run` in `dir`, its stderr kept.
fn spawn_daemon(dir: &Path, fake: &FakeServer) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir)
        .arg("run")
        .env("PERENNIAL_TOKEN", fake.token())
        .env_remove("STATE_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn stop(child: tokio::process::Child) -> String {
    assert!(sigterm(child.id().unwrap()));
    let output = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    stderr
}

/// Issue 15 item 3: after `posts/` was deleted and created again, or swapped in by a rename,
/// the daemon reloaded once and then never saw a change again; a change of `[posts] dir`
/// kept watching the old folder. Every one of these, one after the other, is picked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_follows_a_posts_folder_deleted_recreated_swapped_and_moved() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    let posts: PathBuf = dir.path().join("posts");
    std::fs::write(dir.path().join("config.toml"), config(&fake, "posts")).unwrap();
    write_post(&posts, "first", "The first post.");
    let daemon = spawn_daemon(dir.path(), &fake);
    wait_for_text(&fake, "The first post.").await;

    // Deleted and created again.
    std::fs::remove_dir_all(&posts).unwrap();
    write_post(&posts, "second", "The second post.");
    wait_for_text(&fake, "The second post.").await;

    // Swapped in by a rename, as a deploy script does.
    let staged = dir.path().join("posts.new");
    write_post(&staged, "third", "The third post.");
    std::fs::rename(&posts, dir.path().join("posts.old")).unwrap();
    std::fs::rename(&staged, &posts).unwrap();
    wait_for_text(&fake, "The third post.").await;

    // And once more: the watch of the swapped-in folder works too.
    write_post(&posts, "fourth", "The fourth post.");
    wait_for_text(&fake, "The fourth post.").await;

    // `[posts] dir` changed: the new folder is read and watched.
    let other = dir.path().join("other");
    write_post(&other, "fifth", "The fifth post.");
    std::fs::write(dir.path().join("config.toml"), config(&fake, "other")).unwrap();
    wait_for_text(&fake, "The fifth post.").await;
    write_post(&other, "sixth", "The sixth post.");
    wait_for_text(&fake, "The sixth post.").await;

    let log = stop(daemon).await;
    assert!(log.contains("[posts] dir changed"), "{log}");
}

/// Issue 15 item 3: `[mentions] enabled` did not follow a reload. Turned on by a reload, the
/// daemon answers mentions from then on; turned off, it stops.
#[tokio::test(start_paused = true)]
async fn mentions_enabled_follows_a_reload() {
    let clock = TokioClock::starting_at(ts("2027-01-04T08:00:00Z"));
    let bot = Bot::new(
        fake(FakeOptions::mastodon(), &clock),
        "times = [\"09:00\"]\njitter = \"0m\"",
        "",
        &[],
    );
    let (handle, controls) = bot.start(&clock, RunOptions::default(), None);
    bot.fake
        .wait_for_requests(crate::fake_server::Route::VerifyCredentials, 1)
        .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(bot.fake.stream_count(), 0, "mentions are off");

    let config = std::fs::read_to_string(bot.config_path()).unwrap();
    let guides = "\n[[guides]]\ntopic = \"packaging\"\nkeywords = [\"packaging\"]\ntitle = \"Python Package Guide\"\nurl = \"https://www.pyopensci.org/python-package-guide/\"\n";
    std::fs::write(
        bot.config_path(),
        format!(
            "{}{guides}",
            config.replace("enabled = false", "enabled = true")
        ),
    )
    .unwrap();
    controls.reload.notify_one();
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(1))
        .await
        .expect("the stream opens after the reload");
    bot.fake.add_mention(
        "alice@example.org",
        "<p>@bot how does packaging work?</p>",
        Visibility::Public,
        None,
        false,
    );
    let statuses = tokio::time::timeout(PATIENCE, bot.fake.wait_for_statuses(1))
        .await
        .expect("the mention is answered");
    assert!(statuses[0].in_reply_to_id.is_some());

    std::fs::write(bot.config_path(), config).unwrap();
    controls.reload.notify_one();
    tokio::time::timeout(PATIENCE, bot.fake.wait_for_stream_count(0))
        .await
        .expect("the stream closes after mentions are turned off");
    bot.fake.add_mention(
        "bob@example.org",
        "<p>@bot how does packaging work?</p>",
        Visibility::Public,
        None,
        false,
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(bot.fake.statuses().len(), 1, "no answer while off");
    controls.shutdown.cancel();
    handle.await.unwrap().unwrap();
}
