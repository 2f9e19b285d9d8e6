//! Regression tests for issue 15: `posts/` arrives by pull request, so it is untrusted input
//! to a daemon that holds an access token. Nothing it names may reach outside it, every read
//! is bounded, reload never dies, and the bundled example never rots. Each test is named after
//! the bug it pins.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use perennial::daemon::clock::TokioClock;
use perennial::daemon::RunOptions;
use perennial::posts::config::Visibility;

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
    config_for(&fake.url(), posts)
}

fn config_for(url: &str, posts: &str) -> String {
    format!(
        "[server]\nurl = \"{}\"\n\n[posts]\ndir = \"{posts}\"\nhashtags = []\n\n[schedule]\ntimezone = \"UTC\"\nevery = \"2s\"\n\n[state]\ndir = \"state\"\n\n[mentions]\nenabled = false\n",
        url
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

/// A posts folder holding every hostile file issue 15 found, beside one good post.
struct Hostile {
    dir: tempfile::TempDir,
}

fn hostile_folder(url: &str) -> Hostile {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config_for(url, "posts")).unwrap();
    let posts = dir.path().join("posts");
    let media_post = |name: &str, file: &str| {
        std::fs::write(
            posts.join(format!("tips/{name}.md")),
            format!(
                "+++\ntitle = \"{name}\"\n[[media]]\nfile = \"{file}\"\nalt = \"A picture.\"\n+++\nWith a picture.\n"
            ),
        )
        .unwrap();
    };
    write_post(&posts, "good", "The good post.");
    std::fs::create_dir_all(posts.join("images")).unwrap();
    // 1. Media that leave the posts folder: a link to a secret, a link to an image outside,
    //    an image through a linked folder.
    symlink("/etc/passwd", posts.join("images/shadow.png")).unwrap();
    media_post("shadow", "../images/shadow.png");
    std::fs::write(dir.path().join("outside.png"), b"\x89PNG outside").unwrap();
    symlink(
        dir.path().join("outside.png"),
        posts.join("images/outside.png"),
    )
    .unwrap();
    media_post("outside", "../images/outside.png");
    std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
    std::fs::write(dir.path().join("elsewhere/x.png"), b"\x89PNG elsewhere").unwrap();
    symlink(dir.path().join("elsewhere"), posts.join("linked")).unwrap();
    media_post("through-a-folder", "../linked/x.png");
    // 2. Reads without bounds: a post that is a link to /proc/self/pagemap, a FIFO, a 50 MB
    //    post file and a 1 GiB media file (both sparse: no disk used).
    symlink("/proc/self/pagemap", posts.join("tips/pagemap.md")).unwrap();
    let fifo = posts.join("tips/fifo.md");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::File::create(posts.join("tips/huge.md"))
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    std::fs::File::create(posts.join("images/huge.png"))
        .unwrap()
        .set_len(1024 * 1024 * 1024)
        .unwrap();
    media_post("huge-media", "../images/huge.png");
    // 4. Names that are not UTF-8, which became one id.
    for byte in [0xff_u8, 0xfe] {
        let name = [b"bad".as_slice(), &[byte], b".md"].concat();
        std::fs::write(
            posts.join("tips").join(std::ffi::OsStr::from_bytes(&name)),
            "+++\ntitle = \"bad\"\n+++\nA bad name.\n",
        )
        .unwrap();
    }
    Hostile { dir }
}

/// Issue 15 items 1, 2 and 4: `check` on a folder holding each hostile file reports every one
/// with file, line and column and exits 1; the good post is still fine.
#[test]
fn check_reports_every_hostile_file_of_the_posts_folder() {
    let hostile = hostile_folder("https://example.org");
    let output = crate::support::perennial(hostile.dir.path(), &["check", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let problems: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let problem = |file: &str| -> serde_json::Value {
        // Paths as the config names them: relative to its folder.
        let path = Path::new("posts").join(file);
        problems
            .iter()
            .find(|p| Path::new(p["file"].as_str().unwrap()) == path)
            .unwrap_or_else(|| panic!("no problem reported for {file}: {problems:#?}"))
            .clone()
    };
    // Media: at the `file = ` line (line 4, column 8), never naming the target.
    for post in ["shadow", "outside", "through-a-folder"] {
        let p = problem(&format!("tips/{post}.md"));
        assert_eq!(
            (p["line"].as_u64(), p["column"].as_u64()),
            (Some(4), Some(8)),
            "{p}"
        );
        assert!(
            p["message"]
                .as_str()
                .unwrap()
                .contains("leads outside the posts folder"),
            "{p}"
        );
        assert!(!p["message"].as_str().unwrap().contains("passwd"), "{p}");
    }
    let p = problem("tips/huge-media.md");
    assert_eq!(p["line"].as_u64(), Some(4), "{p}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("over the server's limit"),
        "{p}"
    );
    assert!(problem("linked")["message"]
        .as_str()
        .unwrap()
        .contains("symbolic link leads outside"));
    assert!(problem("tips/pagemap.md")["message"]
        .as_str()
        .unwrap()
        .contains("symbolic link leads outside"));
    assert!(problem("tips/fifo.md")["message"]
        .as_str()
        .unwrap()
        .contains("not a regular file"));
    assert!(problem("tips/huge.md")["message"]
        .as_str()
        .unwrap()
        .contains("larger than 1024 KiB"));
    let not_utf8 = problems
        .iter()
        .filter(|p| p["message"].as_str().unwrap().contains("not valid UTF-8"))
        .count();
    assert_eq!(not_utf8, 2, "{problems:#?}");
    for p in &problems {
        assert!(p["line"].as_u64().unwrap() >= 1 && p["column"].as_u64().unwrap() >= 1);
    }
    // Nothing else, and nothing about the good post.
    assert_eq!(problems.len(), 10, "{problems:#?}");
}

/// Issue 15 items 1 and 2, the daemon given the same folder: it keeps posting the good post,
/// uploads nothing, and reading it all costs little memory (a 50 MB post file and a 1 GiB
/// media file are never read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_given_the_hostile_folder_posts_the_good_post_in_little_memory() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let hostile = hostile_folder(&fake.url());
    let daemon = spawn_daemon(hostile.dir.path(), &fake);
    let pid = daemon.id().unwrap();
    wait_for_text(&fake, "The good post.").await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    let log = stop(daemon).await;
    assert!(fake.media().is_empty(), "nothing was uploaded");
    assert!(
        fake.statuses().iter().all(|s| s.text == "The good post."),
        "only the good post: {:#?}",
        fake.statuses()
    );
    assert!(peak_kb < 50 * 1024, "peak memory {peak_kb} kB\n{log}");
    assert!(!log.contains("root:"), "nothing of /etc/passwd in the log");
}

/// Issue 15 item 7: an ad hoc post whose time passed without it going out (the bundled call
/// for volunteers dated 2026-12-01, seen on 2026-12-07) was "ok" in `check`, absent from
/// `queue` and never mentioned by the daemon. It is a warning in `check` at its `at` line
/// (exit 0), a `missed` line in `queue`, and logged by the daemon at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_post_whose_time_passed_unsent_is_warned_listed_and_logged() {
    let fake = FakeServer::start(FakeOptions::mastodon());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config(&fake, "posts")).unwrap();
    let posts = dir.path().join("posts");
    write_post(&posts, "good", "The good post.");
    std::fs::create_dir_all(posts.join("calls")).unwrap();
    std::fs::write(
        posts.join("calls/old.md"),
        "+++\ntitle = \"old\"\nkind = \"adhoc\"\nat = 2026-01-05T09:30:00Z\n+++\nLast year's call.\n",
    )
    .unwrap();

    let check = crate::support::perennial(dir.path(), &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "a warning, not an error: {text}"
    );
    assert!(
        text.contains("posts/calls/old.md:4:1: warning: this ad hoc post was due Mon 2026-01-05 09:30 UTC and was not sent: it will not be posted"),
        "{text}"
    );
    let json = crate::support::perennial(dir.path(), &["check", "--format", "json"]);
    let problems: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0]["severity"], "warning");
    assert_eq!(problems[0]["line"], 4);

    let queue = crate::support::perennial(dir.path(), &["queue", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&queue.stdout).unwrap();
    let missed = report["missed"].as_array().unwrap();
    assert!(
        missed.iter().any(|m| m
            .as_str()
            .unwrap()
            .contains("ad hoc post calls/old was due")),
        "{report}"
    );

    let daemon = spawn_daemon(dir.path(), &fake);
    wait_for_text(&fake, "The good post.").await;
    let log = stop(daemon).await;
    assert!(
        log.contains("an ad hoc post's time has passed and it was not sent: it will not be posted"),
        "{log}"
    );
    assert!(log.contains("calls/old"), "{log}");
}
