//! The real-server suite: the `perennial` binary against a real GoToSocial on loopback, as an
//! operator runs it. Every other test talks to our fake server, which shares our assumptions;
//! these are the promises tried against a server we did not write.
//!
//! `.ci/run` starts two GoToSocial 0.19.2 servers and names them in the environment:
//!
//! * `PERENNIAL_GTS_URL` and `PERENNIAL_GTS_DIR`: `--statuses-max-chars 500` (fosstodon's
//!   limit) and no rate limit, shared by every test here. `DIR` holds `bot.token`,
//!   `alice.token` (both "read write") and the server's log `gts.log`.
//! * `PERENNIAL_GTS_LIMITED_URL` and `PERENNIAL_GTS_LIMITED_DIR`: the same with a low
//!   `--advanced-rate-limit-requests`, for the server's own 429.
//!
//! Under `CI=true` a missing server fails the test; elsewhere each test says how to run it and
//! passes without doing anything (`.ci/run` is the way to run them; README, "Testing").
//!
//! Each test finds its own statuses by a marker unique to the run, so the tests can share the
//! server and run in parallel; only `mentions_on_gotosocial_*` runs a daemon that answers
//! mentions, so that no other daemon answers its mentions too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The longest any wait for the server here may take when nothing is broken is a few seconds;
/// the 429 test waits out a rate-limit window (GoToSocial's is 5 minutes) on top.
const DEADLINE: Duration = Duration::from_secs(60);
/// Between two looks at the server while waiting for something to appear.
const POLL: Duration = Duration::from_millis(250);

/// A running GoToSocial named by the environment.
#[derive(Clone)]
struct Gts {
    url: String,
    dir: PathBuf,
    http: reqwest::Client,
}

fn real_server(prefix: &str) -> Option<Gts> {
    let url = std::env::var(format!("{prefix}_URL")).ok();
    let dir = std::env::var(format!("{prefix}_DIR")).ok();
    match (url, dir) {
        (Some(url), Some(dir)) if !url.is_empty() && !dir.is_empty() => Some(Gts {
            url: url.trim_end_matches('/').to_string(),
            dir: PathBuf::from(dir),
            http: reqwest::Client::builder()
                // GoToSocial answers a request without one 418.
                .user_agent("perennial-real-server-tests")
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but {prefix}_URL and {prefix}_DIR are not set: the real-server suite must \
             run in CI (`.ci/run` starts GoToSocial and sets them)"
        ),
        _ => {
            eprintln!(
                "not run: no real GoToSocial ({prefix}_URL and {prefix}_DIR unset). `bash .ci/run` \
                 starts one and runs this suite; by hand, see README.md, \"Testing\""
            );
            None
        }
    }
}

impl Gts {
    fn token(&self, user: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{user}.token")))
            .unwrap_or_else(|e| panic!("{}/{user}.token: {e}", self.dir.display()))
            .trim()
            .to_string()
    }

    async fn get(&self, user: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn get_json(&self, user: &str, path: &str) -> Value {
        let response = self.get(user, path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Posts a status as `user` and returns it.
    async fn post_status(&self, user: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .post(format!("{}/api/v1/statuses", self.url))
            .bearer_auth(self.token(user))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status.is_success(),
            "POST /api/v1/statuses: {status} {body}"
        );
        serde_json::from_str(&body).unwrap()
    }

    /// The bot's id, written by the server kit at set-up.
    fn bot_id(&self) -> String {
        std::fs::read_to_string(self.dir.join("bot.id"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The bot's newest statuses whose content contains `marker` (alphanumeric, so the HTML
    /// holds it as it is), newest first; one request.
    async fn newest_bot_statuses_with(&self, marker: &str) -> Vec<Value> {
        let path = format!("/api/v1/accounts/{}/statuses?limit=40", self.bot_id());
        let page = self.get_json("bot", &path).await;
        page.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["content"].as_str().unwrap_or("").contains(marker))
            .cloned()
            .collect()
    }

    /// The statuses of one post: the bot's status containing `marker` (a thread's first part)
    /// and the chain of the bot's statuses replying to it, in order.
    async fn bot_post_statuses(&self, marker: &str) -> Vec<Value> {
        let mut found = self.newest_bot_statuses_with(marker).await;
        assert_eq!(found.len(), 1, "one status opens the post: {found:#?}");
        let root = found.remove(0);
        let root_id = root["id"].as_str().unwrap().to_string();
        let context = self
            .get_json("bot", &format!("/api/v1/statuses/{root_id}/context"))
            .await;
        let descendants = context["descendants"].as_array().unwrap();
        let mut chain = vec![root];
        loop {
            let last = chain.last().unwrap()["id"].as_str().unwrap().to_string();
            let next: Vec<&Value> = descendants
                .iter()
                .filter(|s| s["in_reply_to_id"].as_str() == Some(last.as_str()))
                .filter(|s| s["account"]["id"].as_str() == Some(self.bot_id().as_str()))
                .collect();
            match next.as_slice() {
                [] => break,
                [one] => chain.push((*one).clone()),
                many => panic!("{} parts reply to {last}: a duplicate", many.len()),
            }
        }
        chain
    }

    /// What the server stored for a status: `{"text", "spoiler_text"}` as it was sent
    /// (GoToSocial's `GET /api/v1/statuses/:id/source`).
    async fn source(&self, id: &str) -> Value {
        self.get_json("bot", &format!("/api/v1/statuses/{id}/source"))
            .await
    }

    /// The bot's replies to status `id` (direct children only), as `alice` sees them.
    async fn bot_replies_to(&self, id: &str) -> Vec<Value> {
        let context = self
            .get_json("alice", &format!("/api/v1/statuses/{id}/context"))
            .await;
        context["descendants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["in_reply_to_id"].as_str() == Some(id))
            .filter(|s| s["account"]["username"].as_str() == Some("bot"))
            .cloned()
            .collect()
    }

    /// Waits until `what` returns something, looking every [`POLL`] until `deadline`.
    async fn until<T, F, Fut>(&self, deadline: Duration, description: &str, mut what: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let give_up = Instant::now() + deadline;
        loop {
            if let Some(found) = what().await {
                return found;
            }
            assert!(
                Instant::now() < give_up,
                "gave up after {deadline:?} waiting for {description}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_len(&self) -> usize {
        std::fs::metadata(self.dir.join("gts.log"))
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }

    /// The server's request log lines after byte `from` (its `gts.log`).
    fn log_since(&self, from: usize) -> Vec<String> {
        let log = std::fs::read(self.dir.join("gts.log")).unwrap();
        String::from_utf8_lossy(&log[from.min(log.len())..])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A word no other test and no earlier run uses.
fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}{}", nanos % 1_000_000_000_000)
}

/// A perennial setup (config, posts, state) in a temporary folder, aimed at `gts`.
struct Setup {
    dir: tempfile::TempDir,
    gts: Gts,
}

impl Setup {
    fn new(gts: &Gts, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[server]\nurl = \"{}\"\nsoftware = \"auto\"\n\n[posts]\ndir = \"posts\"\n\
                 hashtags = []\n\n[schedule]\ntimezone = \"UTC\"\nevery = \"1h\"\n\n\
                 [state]\ndir = \"state\"\n\n{extra}",
                gts.url
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("posts/tests")).unwrap();
        Setup {
            dir,
            gts: gts.clone(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write_post(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path().join(format!("posts/tests/{name}.md")), text).unwrap();
        format!("tests/{name}")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_perennial"));
        command
            .current_dir(self.path())
            .args(args)
            .env("PERENNIAL_TOKEN", self.gts.token("bot"))
            .env("RUST_LOG", "info")
            .env_remove("STATE_DIRECTORY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `perennial ARGS` to its end; (exit code, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let output = tokio::time::timeout(DEADLINE, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("perennial {args:?} did not finish in {DEADLINE:?}"))
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let token = self.gts.token("bot");
        assert!(!stdout.contains(&token) && !stderr.contains(&token));
        (output.status.code(), stdout, stderr)
    }

    /// `perennial post ID`, which must succeed.
    async fn post(&self, id: &str) {
        let (code, stdout, stderr) = self.run(&["post", id]).await;
        assert_eq!(code, Some(0), "perennial post {id}:\n{stdout}\n{stderr}");
    }

    /// `perennial preview ID --json`: the statuses it shows for the post.
    async fn preview(&self, id: &str) -> Value {
        let (code, stdout, stderr) = self.run(&["preview", id, "--json"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        let previews: Value = serde_json::from_str(&stdout).unwrap();
        previews[0].clone()
    }

    /// Starts `perennial run`, its stderr lines sent to the returned channel as they come.
    fn start_daemon(&self) -> Daemon {
        let mut child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }
}

struct Daemon {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    /// Waits for a log line containing `text` (and returns it).
    async fn wait_for_line(&mut self, text: &str) -> String {
        self.wait_for_line_within(DEADLINE, text).await
    }

    async fn wait_for_line_within(&mut self, deadline: Duration, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        loop {
            let line = tokio::time::timeout(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no log line with {text:?} in {deadline:?}:\n{}", self.log())
                })
                .unwrap_or_else(|| panic!("the daemon ended:\n{}", self.log()));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }

    /// SIGTERM, then waits for the exit (code 0) and reads the rest of the log.
    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("the daemon is running");
        assert!(crate::support::sigterm(pid));
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the daemon stops after SIGTERM")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        assert_eq!(status.code(), Some(0), "{}", self.log());
        self.log()
    }
}

/// The stored statuses of a post are exactly `preview --json`'s: text, content warning,
/// visibility, language, and each part replying to the one before.
async fn assert_stored_as_previewed(setup: &Setup, id: &str, marker: &str) -> Vec<Value> {
    let preview = setup.preview(id).await;
    assert!(
        preview["fitted"].as_str().unwrap().contains("gotosocial"),
        "preview fits with what the daemon learnt of the server: {preview}"
    );
    assert!(preview["unsendable"].is_null(), "{preview}");
    let expected = preview["statuses"].as_array().unwrap();
    let stored = setup.gts.bot_post_statuses(marker).await;
    assert_eq!(
        stored.len(),
        expected.len(),
        "one stored status per previewed status: {stored:#?}"
    );
    for (index, (status, want)) in stored.iter().zip(expected).enumerate() {
        let id = status["id"].as_str().unwrap();
        let source = setup.gts.source(id).await;
        assert_eq!(source["text"], want["text"], "part {}", index + 1);
        assert_eq!(
            source["spoiler_text"],
            want["spoiler_text"],
            "part {}",
            index + 1
        );
        assert_eq!(
            status["visibility"],
            want["visibility"],
            "part {}",
            index + 1
        );
        assert_eq!(status["language"], want["language"], "part {}", index + 1);
        let reply_to = match want["in_reply_to"].as_u64() {
            Some(part) => Value::from(stored[part as usize]["id"].as_str().unwrap()),
            None => Value::Null,
        };
        assert_eq!(status["in_reply_to_id"], reply_to, "part {}", index + 1);
    }
    stored
}

const LONG_PARAGRAPH: &str = "Packaging a research tool well means a pyproject.toml that \
    says what the package needs, tests that run on every pull request, documentation that \
    shows a new user the first five minutes, and a release process that a second maintainer \
    can follow without asking. None of it is glamorous, all of it is what lets other \
    scientists build on the work.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_post_with_content_warning_and_language_is_stored_as_previewed_on_gotosocial() {
    let Some(gts) = real_server("PERENNIAL_GTS") else {
        return;
    };
    let setup = Setup::new(&gts, "");
    let marker = marker("short");
    let id = setup.write_post(
        "short",
        &format!(
            "+++\ntitle = \"short\"\nlink = \"https://www.pyopensci.org/\"\n\
             content_warning = \"meta: a test post\"\nlanguage = \"es\"\n\
             hashtags = [\"PerennialTest\"]\n+++\nUna prueba corta, {marker}.\n"
        ),
    );
    setup.post(&id).await;
    let stored = assert_stored_as_previewed(&setup, &id, &marker).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["language"], "es");
    assert_eq!(stored[0]["spoiler_text"], "meta: a test post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_post_is_stored_as_previewed_within_500_on_gotosocial() {
    let Some(gts) = real_server("PERENNIAL_GTS") else {
        return;
    };
    let setup = Setup::new(&gts, "");
    let marker = marker("cut");
    let id = setup.write_post(
        "cut",
        &format!(
            "+++\ntitle = \"cut\"\nlink = \"https://www.pyopensci.org/python-package-guide/\"\n\
             +++\n{marker}. {LONG_PARAGRAPH}\n\n{LONG_PARAGRAPH}\n"
        ),
    );
    setup.post(&id).await;
    let stored = assert_stored_as_previewed(&setup, &id, &marker).await;
    assert_eq!(stored.len(), 1);
    let text = setup.gts.source(stored[0]["id"].as_str().unwrap()).await["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.chars().count() <= 500, "{text}");
    assert!(text.contains('…'), "{text}");
    assert!(
        text.contains("https://www.pyopensci.org/python-package-guide/"),
        "{text}"
    );
}

/// Issue 14 item 1 against the real server: every part after the first is stored `unlisted`,
/// as `preview` shows, and replies to the part before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_stored_part_by_part_as_previewed_with_each_parts_visibility_on_gotosocial() {
    let Some(gts) = real_server("PERENNIAL_GTS") else {
        return;
    };
    let setup = Setup::new(&gts, "");
    let marker = marker("thread");
    let id = setup.write_post(
        "thread",
        &format!(
            "+++\ntitle = \"thread\"\nlink = \"https://www.pyopensci.org/\"\n\
             long_posts = \"thread\"\n+++\n{marker} opens this. {LONG_PARAGRAPH}\n\n\
             {LONG_PARAGRAPH}\n\n{LONG_PARAGRAPH}\n"
        ),
    );
    setup.post(&id).await;
    let stored = assert_stored_as_previewed(&setup, &id, &marker).await;
    assert!(stored.len() >= 3, "a thread of 3 or more: {}", stored.len());
    assert_eq!(stored[0]["visibility"], "public");
    for part in &stored[1..] {
        assert_eq!(part["visibility"], "unlisted", "{part}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_with_alt_text_is_uploaded_and_attached_on_gotosocial() {
    let Some(gts) = real_server("PERENNIAL_GTS") else {
        return;
    };
    let setup = Setup::new(&gts, "");
    std::fs::create_dir_all(setup.path().join("posts/tests/images")).unwrap();
    std::fs::copy(
        crate::support::repository_root().join("posts/package-showcase/images/trajectory.png"),
        setup.path().join("posts/tests/images/trajectory.png"),
    )
    .unwrap();
    let marker = marker("media");
    let alt = format!("A trajectory drawn as a line over a map, {marker}");
    let id = setup.write_post(
        "media",
        &format!(
            "+++\ntitle = \"media\"\n[[media]]\nfile = \"images/trajectory.png\"\n\
             alt = \"{alt}\"\n+++\nA picture, {marker}.\n"
        ),
    );
    setup.post(&id).await;
    let stored = assert_stored_as_previewed(&setup, &id, &marker).await;
    let media = stored[0]["media_attachments"].as_array().unwrap();
    assert_eq!(media.len(), 1, "{stored:#?}");
    assert_eq!(media[0]["type"], "image");
    assert_eq!(media[0]["description"], alt.as_str());
}

/// A mention is answered in its thread; a "thanks!" to the bot's reply is left alone; a
/// mention sent while perennial is stopped is answered after the restart; nothing is
/// answered twice across the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_on_gotosocial_are_answered_in_thread_once_and_after_a_restart() {
    let Some(gts) = real_server("PERENNIAL_GTS") else {
        return;
    };
    let setup = Setup::new(
        &gts,
        // The server outlives one run (a developer's may hold earlier runs' mentions from
        // alice): those are older than the lookback, and the caps are far above this test.
        "[mentions]\nenabled = true\nreply_visibility = \"unlisted\"\npoll_every = \"10s\"\n\
         first_start_lookback = \"1m\"\nper_account_per_hour = 1000\nper_hour = 1000\n\n\
         [[guides]]\ntopic = \"packaging\"\nkeywords = [\"packaging\", \"pyproject\"]\n\
         title = \"Python Package Guide\"\nurl = \"https://www.pyopensci.org/python-package-guide/\"\n",
    );
    let marker = marker("mention");
    let ask = |text: String| {
        let gts = gts.clone();
        async move {
            gts.post_status("alice", &[("status", &text), ("visibility", "public")])
                .await
        }
    };
    let reply_to = |mention: Value| {
        let gts = gts.clone();
        move || {
            let gts = gts.clone();
            let id = mention["id"].as_str().unwrap().to_string();
            async move {
                let replies = gts.bot_replies_to(&id).await;
                (!replies.is_empty()).then_some(replies)
            }
        }
    };

    // Sent before the first start: answered by the catch-up.
    let first = ask(format!("@bot where do I read about packaging? {marker}a")).await;
    let mut daemon = setup.start_daemon();
    daemon.wait_for_line("ready").await;
    let replies = gts
        .until(
            DEADLINE,
            "the reply to the first mention",
            reply_to(first.clone()),
        )
        .await;
    assert_eq!(replies.len(), 1, "{replies:#?}");
    let reply = &replies[0];
    let text = gts.source(reply["id"].as_str().unwrap()).await["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("@alice"), "{text}");
    assert!(
        text.contains("https://www.pyopensci.org/python-package-guide/"),
        "{text}"
    );
    assert_eq!(reply["visibility"], "unlisted");

    // A thank-you to the reply asks for nothing: no answer. Then a new question while the
    // daemon runs is answered; by then the thank-you has been dealt with too.
    let thanks = gts
        .post_status(
            "alice",
            &[
                ("status", &format!("@bot thanks! {marker}b")),
                ("in_reply_to_id", reply["id"].as_str().unwrap()),
                ("visibility", "public"),
            ],
        )
        .await;
    let second = ask(format!("@bot how do I write a pyproject? {marker}c")).await;
    gts.until(
        DEADLINE,
        "the reply to the second mention",
        reply_to(second.clone()),
    )
    .await;
    let log = daemon.stop().await;

    // A burst sent while perennial is stopped: answered after the restart, by the catch-up,
    // several replies in flight at once.
    let mut burst = Vec::new();
    for n in 0..10 {
        burst.push(
            ask(format!(
                "@bot packaging question {n} while you sleep {marker}d{n}"
            ))
            .await,
        );
    }
    let mut daemon = setup.start_daemon();
    daemon.wait_for_line("ready").await;
    for (n, mention) in burst.iter().enumerate() {
        gts.until(
            DEADLINE,
            &format!("the reply to mention {n} of the burst"),
            reply_to(mention.clone()),
        )
        .await;
    }
    // The catch-up after the restart has read past the earlier mentions: exactly one reply
    // each, and none to the thank-you.
    let log = format!("{log}\n{}", daemon.stop().await);
    for mention in [&first, &second].into_iter().chain(&burst) {
        let replies = gts.bot_replies_to(mention["id"].as_str().unwrap()).await;
        assert_eq!(replies.len(), 1, "{replies:#?}\n{log}");
    }
    // A clean stop leaves everything in state.json: the mentions journal is folded in.
    let journal = setup.dir.path().join("state/mentions.journal");
    assert!(
        std::fs::metadata(&journal).map_or(true, |m| m.len() == 0),
        "{}",
        std::fs::read_to_string(&journal).unwrap_or_default()
    );
    assert!(
        gts.bot_replies_to(thanks["id"].as_str().unwrap())
            .await
            .is_empty(),
        "{log}"
    );
}

/// Issue 14 item 2 against the real server: GoToSocial's 429 (whole-second
/// `X-Ratelimit-Reset`, no `Retry-After`) is waited out, not spun on. Before the fix
/// perennial retried 74 times in 105 ms after such a wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotosocials_own_429_is_waited_out_without_a_spin() {
    let Some(gts) = real_server("PERENNIAL_GTS_LIMITED") else {
        return;
    };
    let setup = Setup::new(&gts, "[mentions]\nenabled = false\n");
    let log_from = gts.log_len();
    let mut daemon = setup.start_daemon();
    daemon.wait_for_line("ready").await;

    // Use up the window (every client on 127.0.0.1 shares it), from this test.
    let mut reset = None;
    for _ in 0..1000 {
        let response = gts.get("alice", "/api/v1/instance").await;
        if response.status() == 429 {
            reset = response
                .headers()
                .get("x-ratelimit-reset")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }
    let reset: jiff::Timestamp = reset
        .expect("the server's rate limit was reached")
        .parse()
        .unwrap();

    // An ad hoc post due now, picked up by the watcher while the limit holds.
    let marker = marker("limited");
    let at = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    let id = setup.write_post(
        "limited",
        &format!("+++\ntitle = \"limited\"\nkind = \"adhoc\"\nat = {at}\n+++\nAfter the wait, {marker}.\n"),
    );
    // The window is at most 5 minutes; the daemon says when the post is out.
    daemon
        .wait_for_line_within(Duration::from_secs(420), "post is out")
        .await;
    let stored = gts.newest_bot_statuses_with(&marker).await;
    let log = daemon.stop().await;
    assert_eq!(stored.len(), 1, "{stored:#?}\n{log}");
    let created: jiff::Timestamp = stored[0]["created_at"].as_str().unwrap().parse().unwrap();
    assert!(
        created >= reset - jiff::SignedDuration::from_secs(1),
        "posted at {created}, before the reset {reset}"
    );

    let ours: Vec<String> = gts
        .log_since(log_from)
        .into_iter()
        // perennial's own user agent is `perennial/VERSION`; the test's is another.
        .filter(|line| line.contains("userAgent=perennial/"))
        .collect();
    let refused = ours.iter().filter(|l| l.contains("statusCode=429")).count();
    let posts = ours
        .iter()
        .filter(|l| l.contains("method=POST") && l.contains("path=/api/v1/statuses "))
        .count();
    assert!(refused >= 1, "perennial met the limit: {ours:#?}\n{log}");
    // The read before sending met the limit, and the wait outlasted the window: one 429
    // (two when the read before sending came in just before the window's end).
    assert!(
        refused <= 2,
        "{refused} requests refused with 429: a spin\n{}\n{log}",
        ours.join("\n")
    );
    assert!(posts >= 1, "{}", ours.join("\n"));
    assert!(id.starts_with("tests/"));
}
