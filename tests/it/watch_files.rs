//! The file watcher on a real folder: which changes it reports, debounced into one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perennial::daemon::watch::{watch, ChangeWatcher, Changes};

/// A config file beside a posts folder that has one post and a `.git` folder.
struct Site {
    _dir: tempfile::TempDir,
    posts: PathBuf,
    config: PathBuf,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let posts = dir.path().join("posts");
    std::fs::create_dir_all(posts.join("tips")).unwrap();
    std::fs::create_dir_all(posts.join(".git")).unwrap();
    std::fs::write(posts.join("tips/a.md"), "+++\ntitle = \"A\"\n+++\nA.\n").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[server]\nurl = \"https://example.org\"\n").unwrap();
    Site {
        _dir: dir,
        posts,
        config,
    }
}

fn start(site: &Site) -> ChangeWatcher {
    watch(&site.posts, &site.config).unwrap()
}

async fn next_change(watcher: &mut ChangeWatcher) -> Changes {
    tokio::time::timeout(Duration::from_secs(10), watcher.changed())
        .await
        .expect("no change reported within 10 s")
}

/// Polls `changed()` once: nothing may be waiting to be reported.
async fn assert_nothing_pending(watcher: &mut ChangeWatcher) {
    let pending = tokio::time::timeout(Duration::ZERO, watcher.changed()).await;
    assert!(pending.is_err(), "unexpected change: {pending:?}");
}

fn paths(list: &[&Path]) -> BTreeSet<PathBuf> {
    list.iter().map(|path| path.to_path_buf()).collect()
}

#[tokio::test]
async fn creating_modifying_and_removing_a_post_each_report_it() {
    let site = site();
    let mut watcher = start(&site);

    let new_post = site.posts.join("tips/b.md");
    std::fs::write(&new_post, "+++\ntitle = \"B\"\n+++\nB.\n").unwrap();
    let change = next_change(&mut watcher).await;
    assert_eq!(change.paths(), &paths(&[&new_post]));
    assert!(!change.may_have_missed());

    let old_post = site.posts.join("tips/a.md");
    std::fs::write(&old_post, "+++\ntitle = \"A, edited\"\n+++\nA.\n").unwrap();
    assert_eq!(
        next_change(&mut watcher).await.paths(),
        &paths(&[&old_post])
    );

    std::fs::remove_file(&old_post).unwrap();
    assert_eq!(
        next_change(&mut watcher).await.paths(),
        &paths(&[&old_post])
    );
    assert_nothing_pending(&mut watcher).await;
}

#[tokio::test]
async fn a_new_folder_of_posts_is_reported_and_then_watched() {
    let site = site();
    let mut watcher = start(&site);
    let folder = site.posts.join("events");
    std::fs::create_dir(&folder).unwrap();
    assert!(next_change(&mut watcher).await.paths().contains(&folder));

    // notify adds the new folder's watch right after it reports the folder, well within the
    // quiet period that `changed()` waits for.
    let post = folder.join("meetup.md");
    std::fs::write(&post, "+++\ntitle = \"Meetup\"\n+++\nCome.\n").unwrap();
    assert_eq!(next_change(&mut watcher).await.paths(), &paths(&[&post]));
}

#[tokio::test]
async fn replacing_the_config_by_rename_is_reported() {
    let site = site();
    let mut watcher = start(&site);
    let replacement = site.config.with_extension("toml.new");
    std::fs::write(&replacement, "[server]\nurl = \"https://example.net\"\n").unwrap();
    std::fs::rename(&replacement, &site.config).unwrap();
    let change = next_change(&mut watcher).await;
    assert_eq!(change.paths(), &paths(&[&site.config]));
    assert_nothing_pending(&mut watcher).await;
}

#[tokio::test]
async fn editing_the_config_in_place_is_reported() {
    let site = site();
    let mut watcher = start(&site);
    std::fs::write(&site.config, "[server]\nurl = \"https://example.com\"\n").unwrap();
    assert_eq!(
        next_change(&mut watcher).await.paths(),
        &paths(&[&site.config])
    );
}

#[tokio::test]
async fn a_burst_of_thirty_writes_is_one_change() {
    let site = site();
    let mut watcher = start(&site);
    let written: Vec<PathBuf> = (0..30)
        .map(|i| site.posts.join(format!("tips/burst-{i:02}.md")))
        .collect();
    for (i, path) in written.iter().enumerate() {
        std::fs::write(path, format!("+++\ntitle = \"{i}\"\n+++\nText {i}.\n")).unwrap();
    }
    let change = next_change(&mut watcher).await;
    assert_eq!(change.paths(), &written.iter().cloned().collect());
    assert_nothing_pending(&mut watcher).await;
}

#[tokio::test]
async fn dot_files_reads_and_other_files_beside_the_config_are_not_changes() {
    let site = site();
    let mut watcher = start(&site);
    std::fs::write(site.posts.join(".git/x"), "objects").unwrap();
    std::fs::create_dir(site.posts.join(".git/refs")).unwrap();
    std::fs::write(site.posts.join("tips/.a.md.swp"), "swap").unwrap();
    let _ = std::fs::read_to_string(site.posts.join("tips/a.md")).unwrap();
    let _ = std::fs::read_dir(&site.posts).unwrap().count();
    let _ = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(site.config.with_file_name("state.json"), "{}").unwrap();

    // inotify reports events in order, so once this one is reported, the ones above have
    // been seen (and must have been dropped).
    let marker = site.posts.join("tips/marker.md");
    std::fs::write(&marker, "+++\ntitle = \"M\"\n+++\nM.\n").unwrap();
    assert_eq!(next_change(&mut watcher).await.paths(), &paths(&[&marker]));
    assert_nothing_pending(&mut watcher).await;
}

#[tokio::test]
async fn a_change_made_while_nobody_waits_is_reported_later() {
    let site = site();
    let mut watcher = start(&site);
    let post = site.posts.join("tips/early.md");
    std::fs::write(&post, "+++\ntitle = \"E\"\n+++\nE.\n").unwrap();
    // Asked and given up on at once (as a `select!` that another branch won would do).
    let _ = tokio::time::timeout(Duration::ZERO, watcher.changed()).await;
    assert_eq!(next_change(&mut watcher).await.paths(), &paths(&[&post]));
}

/// A posts folder that does not exist (yet, or any more) is watched for through its parent:
/// its creation is a change, and so is a posts folder swapped in by a rename.
#[tokio::test]
async fn a_posts_folder_that_does_not_exist_is_reported_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let posts = dir.path().join("posts");
    let config = dir.path().join("config.toml");
    let mut watcher = watch(&posts, &config).unwrap();
    assert_nothing_pending(&mut watcher).await;
    let staged = dir.path().join("staged");
    std::fs::create_dir_all(staged.join("tips")).unwrap();
    // A sibling is not a change; the posts folder arriving by rename is.
    assert_nothing_pending(&mut watcher).await;
    std::fs::rename(&staged, &posts).unwrap();
    assert!(next_change(&mut watcher).await.paths().contains(&posts));
}

#[tokio::test]
async fn a_symlinked_config_is_watched_where_it_points() {
    let site = site();
    let elsewhere = site.posts.parent().unwrap().join("etc");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = elsewhere.join("config.toml");
    std::os::unix::fs::symlink(&site.config, &link).unwrap();
    let mut watcher = watch(&site.posts, &link).unwrap();

    std::fs::write(&site.config, "[server]\nurl = \"https://example.com\"\n").unwrap();
    let target = site.config.canonicalize().unwrap();
    assert_eq!(next_change(&mut watcher).await.paths(), &paths(&[&target]));
}
