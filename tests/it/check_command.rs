//! `perennial check` run as a user runs it: exit codes and the three output formats.

use crate::support::{perennial, repository_root};

fn cli_dir() -> std::path::PathBuf {
    repository_root().join("tests/data/cli")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn check_on_the_bundled_example_exits_0_and_lists_every_post() {
    let output = perennial(&repository_root(), &["check"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let posts = walk_post_ids(&repository_root().join("posts"));
    assert!(posts.len() >= 16);
    for id in posts {
        assert!(
            text.lines()
                .any(|line| line.starts_with("ok") && line.split_whitespace().nth(1) == Some(&id)),
            "`{id}` is not listed as ok in:\n{text}"
        );
    }
}

#[test]
fn broken_posts_are_all_reported_with_line_and_column_and_exit_1() {
    let output = perennial(&cli_dir(), &["check"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    // The place and severity first, then as rustc shows a problem: the line with a caret
    // under it, the hint.
    assert!(
        text.contains("posts/showcase/typo.md:3:1: error: unknown field `lnk`, expected one of `title`, `category`, `link`,"),
        "{text}"
    );
    assert!(
        text.contains("  |\n3 | lnk = \"https://example.org\"\n  | ^^^\n"),
        "{text}"
    );
    assert!(text.contains("  = help: did you mean `link`?"), "{text}");
    assert!(
        text.contains(
            "posts/tips/no-at.md:3:8: error: an ad hoc post needs `at`, the time it goes out\n  |\n3 | kind = \"adhoc\"\n  |        ^^^^^^^\n"
        ),
        "{text}"
    );
    assert!(text.contains("ok     tips/good"), "{text}");
    assert!(!text.contains("README"), "README.md is not a post: {text}");
    assert!(
        text.contains("3 post file(s): 1 ok, 2 with errors; 2 problem(s) in all"),
        "{text}"
    );
}

#[test]
fn github_format_prints_one_annotation_per_problem() {
    let output = perennial(&cli_dir(), &["check", "--format", "github"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let annotations: Vec<&str> = text.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(annotations.len(), 2, "{text}");
    assert!(annotations[0]
        .starts_with("::error file=posts/showcase/typo.md,line=3,col=1::unknown field `lnk`"));
    assert!(annotations[1].starts_with("::error file=posts/tips/no-at.md,line=3,col=8::"));
}

#[test]
fn json_format_prints_an_array_of_located_problems() {
    let output = perennial(&cli_dir(), &["check", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let problems = value.as_array().expect("an array");
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1]["file"], "posts/tips/no-at.md");
    assert_eq!(problems[1]["line"], 3);
    assert_eq!(problems[1]["column"], 8);
    assert!(problems[1]["message"]
        .as_str()
        .unwrap()
        .contains("needs `at`"));
}

#[test]
fn a_bad_config_exits_78_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"https://a.example\"\nsoftware = \"mastadon\"\n",
    )
    .unwrap();
    let output = perennial(dir.path(), &["check"]);
    assert_eq!(output.status.code(), Some(78));
    let text = stdout(&output);
    assert!(
        text.starts_with("config.toml:3:12: error: unknown variant `mastadon`"),
        "{text}"
    );
    assert!(text.contains("3 | software = \"mastadon\"\n"), "{text}");
    assert!(text.contains("did you mean `mastodon`?"), "{text}");
}

#[test]
fn a_missing_config_exits_78_and_a_usage_error_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = perennial(dir.path(), &["check"]);
    assert_eq!(missing.status.code(), Some(78));
    assert!(stdout(&missing).contains("cannot read the configuration file"));
    let usage = perennial(dir.path(), &["check", "--format", "xml"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn check_reports_a_post_that_cannot_be_sent_at_an_absurd_limit_and_warns_about_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nurl = \"https://a.example\"\nmax_characters = 10\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("posts")).unwrap();
    std::fs::write(
        dir.path().join("posts/linked.md"),
        "+++\ntitle = \"x\"\nlink = \"https://example.org/guide\"\n+++\nRead the guide before you start.\n",
    )
    .unwrap();
    let output = perennial(dir.path(), &["check"]);
    let text = stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "posts/linked.md:1:1: error: this post cannot be sent at the limit of 10 characters"
        ),
        "{text}"
    );
    // It names what takes the room, and nothing the post does not have.
    assert!(text.contains("26 characters with the link alone"), "{text}");
    assert!(!text.contains("content warning"), "{text}");
    assert!(
        text.contains("= help: if the limit is wrong, set `max_characters`"),
        "{text}"
    );
    assert!(
        stderr.contains("warning: the limit is 10 characters, below 100"),
        "{stderr}"
    );
    // preview says the same, once, and the daemon will not send it.
    let output = perennial(dir.path(), &["preview"]);
    let text = stdout(&output);
    assert_eq!(
        text.matches("error: this post cannot be sent at the limit of 10")
            .count(),
        1,
        "{text}"
    );
}

fn walk_post_ids(dir: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            let relative = path.strip_prefix(dir).unwrap().with_extension("");
            ids.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    ids
}
