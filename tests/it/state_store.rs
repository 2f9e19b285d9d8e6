//! The state file: round trip, interrupted writes, refused files, the lock, the directory.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use perennial::posts::config::Visibility;
use perennial::state::{
    resolve_state_dir, FailedPost, HandledMention, IntentMedia, IntentPart, MentionOutcome,
    MentionsState, PostIntent, PostReason, Posted, ReplyIntent, Rotation, SaveStep, ServerSeen,
    SkipReason, State, StateError, StateStore, WriteSteps, SCHEMA_VERSION, STATE_FILE_NAME,
};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A state with every field filled.
fn full_state() -> State {
    State {
        version: SCHEMA_VERSION,
        history: vec![
            Posted {
                post: "evergreen/welcome".to_string(),
                hash: "sha256:aaaa".to_string(),
                slot: at("2025-03-01T09:00:00Z"),
                at: at("2025-03-01T09:03:12Z"),
                reason: PostReason::Slot,
                category: "evergreen".to_string(),
                statuses: vec!["01JNABCDEF".to_string()],
            },
            Posted {
                post: "events/meetup".to_string(),
                hash: "sha256:bbbb".to_string(),
                slot: at("2025-03-02T17:30:00Z"),
                at: at("2025-03-02T17:30:01Z"),
                reason: PostReason::Adhoc,
                category: "events".to_string(),
                statuses: vec!["113".to_string(), "114".to_string(), "115".to_string()],
            },
            Posted {
                post: "evergreen/guide".to_string(),
                hash: "sha256:cccc".to_string(),
                slot: at("2025-03-03T12:00:00Z"),
                at: at("2025-03-03T12:10:00Z"),
                reason: PostReason::Manual,
                category: "evergreen".to_string(),
                statuses: vec!["116".to_string()],
            },
        ],
        rotation: Rotation {
            last_slot: Some(at("2025-03-03T09:00:00Z")),
            checked: Some(at("2025-03-03T09:05:00Z")),
            credit: BTreeMap::from([("evergreen".to_string(), 1.25), ("tips".to_string(), -0.75)]),
        },
        pending: Some(PostIntent {
            post: "tips/backups".to_string(),
            hash: "sha256:dddd".to_string(),
            slot: at("2025-03-04T09:00:00Z"),
            reason: PostReason::Slot,
            category: "tips".to_string(),
            started: at("2025-03-04T09:01:00Z"),
            visibility: Visibility::Unlisted,
            language: Some("en".to_string()),
            media: vec![IntentMedia {
                path: "posts/tips/images/backup.png".into(),
                alt: "A diagram of three copies of a file".to_string(),
            }],
            credit_after: Some(BTreeMap::from([("tips".to_string(), -1.5)])),
            account: Some("109".to_string()),
            after_status: Some("116".to_string()),
            after_status_read: true,
            settings: Some("fit-1".to_string()),
            parts: vec![
                IntentPart {
                    text: "Back up your files. 1/2".to_string(),
                    spoiler_text: Some("long".to_string()),
                    visibility: Some(Visibility::Unlisted),
                    language: Some("en".to_string()),
                    idempotency_key: "key-1".to_string(),
                    status_id: Some("117".to_string()),
                },
                IntentPart {
                    text: "Test the restore \"too\" ✅ 2/2".to_string(),
                    spoiler_text: None,
                    visibility: Some(Visibility::Unlisted),
                    language: None,
                    idempotency_key: "key-2".to_string(),
                    status_id: None,
                },
            ],
        }),
        failed: BTreeMap::from([(
            "tips/too-long".to_string(),
            FailedPost {
                hash: "sha256:eeee".to_string(),
                at: at("2025-02-28T09:00:05Z"),
                message: "Validation failed: Text character limit of 500 exceeded".to_string(),
                settings: Some("fit-1".to_string()),
            },
        )]),
        mentions: MentionsState {
            cursor: Some("01JNZZZZZZ".to_string()),
            handled: vec![
                HandledMention {
                    notification: "01JNYYYYYY".to_string(),
                    status: "01JNYYYYY1".to_string(),
                    acct: "alice@example.org".to_string(),
                    at: at("2025-03-04T08:00:00Z"),
                    outcome: MentionOutcome::Replied {
                        status_id: "01JNYYYYY2".to_string(),
                    },
                },
                HandledMention {
                    notification: "01JNZZZZZZ".to_string(),
                    status: "01JNZZZZZ1".to_string(),
                    acct: "bot@example.org".to_string(),
                    at: at("2025-03-04T08:30:00Z"),
                    outcome: MentionOutcome::Skipped {
                        reason: SkipReason::Bot,
                    },
                },
            ],
            caught_up: Some(at("2025-03-04T08:40:00Z")),
            pending: vec![ReplyIntent {
                notification: "01JP000000".to_string(),
                status: "01JP000001".to_string(),
                acct: "carol".to_string(),
                text: "@carol Python Package Guide: https://example.org/".to_string(),
                visibility: Visibility::Direct,
                idempotency_key: "reply-key".to_string(),
                started: at("2025-03-04T08:45:00Z"),
                key: None,
            }],
        },
        server: Some(ServerSeen {
            url: "https://fosstodon.org".to_string(),
            software: perennial::text::count::Software::Mastodon,
            max_characters: 500,
            characters_reserved_per_url: 23,
            max_media_attachments: 4,
            description_limit: 1500,
            image_size_limit: Some(16 * 1024 * 1024),
            video_size_limit: None,
            account_id: "109".to_string(),
            acct: "pyopensci".to_string(),
            at: at("2025-03-04T08:00:00Z"),
        }),
    }
}

/// A different state, to save over [`full_state`].
fn newer_state() -> State {
    let mut state = full_state();
    let intent = state.pending.take().unwrap();
    state.history.push(Posted {
        post: intent.post,
        hash: intent.hash,
        slot: intent.slot,
        at: at("2025-03-04T09:01:02Z"),
        reason: intent.reason,
        category: intent.category,
        statuses: vec!["117".to_string(), "118".to_string()],
    });
    state.rotation.last_slot = Some(at("2025-03-04T09:00:00Z"));
    state
}

fn temp_path(store: &StateStore) -> PathBuf {
    store.temp_path()
}

#[test]
fn round_trip_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    assert_eq!(store.path(), dir.path().join(STATE_FILE_NAME));

    let state = full_state();
    store.save(&state).unwrap();

    assert_eq!(store.load().unwrap(), Some(state));
    let text = std::fs::read_to_string(store.path()).unwrap();
    assert!(
        text.starts_with("{\n  \"version\": 1,\n  \"history\": [\n"),
        "not pretty JSON:\n{text}"
    );
    assert!(text.ends_with("}\n"), "no final newline:\n{text}");
    assert!(!temp_path(&store).exists());
}

#[test]
fn default_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&State::default()).unwrap();
    assert_eq!(store.load().unwrap(), Some(State::default()));
}

#[test]
fn a_file_with_only_a_version_loads_as_the_default_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    std::fs::write(store.path(), "{\"version\": 1}").unwrap();
    assert_eq!(store.load().unwrap(), Some(State::default()));
}

#[test]
fn missing_file_loads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(StateStore::new(dir.path()).load().unwrap(), None);
    // Not even the directory exists yet.
    let store = StateStore::new(dir.path().join("not").join("yet"));
    assert_eq!(store.load().unwrap(), None);
    assert!(!store.dir().exists(), "load must not create the directory");
}

#[test]
fn save_creates_the_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path().join("var").join("perennial"));
    store.save(&full_state()).unwrap();
    assert_eq!(store.load().unwrap(), Some(full_state()));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "directory mode {mode:o}");
    }
}

#[test]
fn save_replaces_an_existing_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&full_state()).unwrap();
    store.save(&newer_state()).unwrap();
    assert_eq!(store.load().unwrap(), Some(newer_state()));
}

#[cfg(unix)]
#[test]
fn saved_file_has_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&full_state()).unwrap();
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
}

/// A crash after the temporary file was written in full leaves it behind; the old state is
/// what loads, and the next save replaces the leftover (and does not keep its mode).
#[test]
fn stale_temp_file_is_ignored_by_load_and_replaced_by_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&full_state()).unwrap();

    let stale = temp_path(&store);
    std::fs::write(&stale, serde_json::to_vec_pretty(&newer_state()).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert_eq!(store.load().unwrap(), Some(full_state()));

    // A half-written leftover too.
    std::fs::write(&stale, b"{\"version\": 1, \"hist").unwrap();
    store.save(&newer_state()).unwrap();
    assert_eq!(store.load().unwrap(), Some(newer_state()));
    assert!(!stale.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    }
}

/// Where [`Faulty`] fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The temporary file cannot be created: nothing was written.
    BeforeWriting,
    /// Half the bytes reach the temporary file, then the disk is full.
    PartialWrite,
    /// The temporary file is complete but flushing it fails, before the rename.
    CompleteBeforeRename,
    /// The rename fails.
    Rename,
    /// The rename happened; flushing the directory fails.
    AfterRename,
}

/// The real steps, except the one named by `fault`, which fails as a crash or a full disk
/// would leave things. `reached` records that the fault really happened.
struct Faulty {
    fault: Fault,
    reached: bool,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        Faulty {
            fault,
            reached: false,
        }
    }

    fn fail(&mut self, fault: Fault) -> io::Result<()> {
        if self.fault == fault {
            self.reached = true;
            Err(io::Error::other(format!("simulated fault: {fault:?}")))
        } else {
            Ok(())
        }
    }
}

impl WriteSteps for Faulty {
    fn create_temp(&mut self, temp: &Path) -> io::Result<File> {
        self.fail(Fault::BeforeWriting)?;
        File::create(temp)
    }

    fn write_temp(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.fault == Fault::PartialWrite {
            file.write_all(&bytes[..bytes.len() / 2])?;
            file.sync_all()?;
        }
        self.fail(Fault::PartialWrite)?;
        file.write_all(bytes)
    }

    fn sync_temp(&mut self, file: &File) -> io::Result<()> {
        self.fail(Fault::CompleteBeforeRename)?;
        file.sync_all()
    }

    fn rename(&mut self, temp: &Path, state_file: &Path) -> io::Result<()> {
        self.fail(Fault::Rename)?;
        std::fs::rename(temp, state_file)
    }

    fn sync_dir(&mut self, _dir: &Path) -> io::Result<()> {
        self.fail(Fault::AfterRename)
    }
}

#[test]
fn an_interrupted_save_leaves_the_old_state_loadable() {
    let cases = [
        (Fault::BeforeWriting, SaveStep::CreateTemp, "create"),
        (Fault::PartialWrite, SaveStep::WriteTemp, "write"),
        (
            Fault::CompleteBeforeRename,
            SaveStep::SyncTemp,
            "flush to disk",
        ),
        (Fault::Rename, SaveStep::Rename, "rename into place"),
    ];
    for (fault, expected_step, verb) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        store.save(&full_state()).unwrap();
        let old_bytes = std::fs::read(store.path()).unwrap();

        let mut steps = Faulty::new(fault);
        let error = store.save_with(&newer_state(), &mut steps).unwrap_err();

        assert!(steps.reached, "{fault:?}: the fault was never reached");
        let temp = temp_path(&store);
        match &error {
            StateError::Write { step, path, .. } => {
                assert_eq!(*step, expected_step, "{fault:?}");
                assert_eq!(path, &temp, "{fault:?}");
            }
            other => panic!("{fault:?}: expected a write error, got {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!(
                "cannot save the state: cannot {verb} {}: simulated fault: {fault:?}",
                temp.display()
            )
        );
        assert_eq!(store.load().unwrap(), Some(full_state()), "{fault:?}");
        assert_eq!(std::fs::read(store.path()).unwrap(), old_bytes, "{fault:?}");
        assert!(!temp.exists(), "{fault:?}: temporary file left behind");

        // The next save, with the real steps, goes through.
        store.save(&newer_state()).unwrap();
        assert_eq!(store.load().unwrap(), Some(newer_state()), "{fault:?}");
    }
}

#[test]
fn an_interrupted_first_save_leaves_no_state() {
    for fault in [
        Fault::BeforeWriting,
        Fault::PartialWrite,
        Fault::CompleteBeforeRename,
        Fault::Rename,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let mut steps = Faulty::new(fault);
        store.save_with(&full_state(), &mut steps).unwrap_err();
        assert!(steps.reached, "{fault:?}: the fault was never reached");
        assert_eq!(store.load().unwrap(), None, "{fault:?}");
    }
}

/// After the rename the new state is in place; the error says it may not be durable.
#[test]
fn a_failed_directory_flush_reports_an_error_with_the_new_state_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&full_state()).unwrap();

    let mut steps = Faulty::new(Fault::AfterRename);
    let error = store.save_with(&newer_state(), &mut steps).unwrap_err();
    assert!(steps.reached);
    assert_eq!(
        error.to_string(),
        format!(
            "cannot save the state: cannot flush to disk the directory {}: simulated fault: \
             AfterRename",
            store.dir().display()
        )
    );
    assert_eq!(store.load().unwrap(), Some(newer_state()));
}

#[test]
fn a_state_that_would_not_load_back_is_not_written() {
    let mut nan_credit = full_state();
    nan_credit
        .rotation
        .credit
        .insert("events".to_string(), f64::NAN);
    let version_zero = State {
        version: 0,
        ..full_state()
    };
    let too_new = State {
        version: SCHEMA_VERSION + 1,
        ..full_state()
    };
    // serde_json writes NaN as `null`, which does not read back as a number.
    let nan_line = serde_json::to_string_pretty(&nan_credit)
        .unwrap()
        .lines()
        .position(|line| line == "      \"events\": null,")
        .expect("the NaN credit is written as null")
        + 1;
    let cases = [
        (
            nan_credit,
            format!(
                "unexpected content at line {nan_line}, column 20: invalid type: null, \
                 expected f64"
            ),
        ),
        (
            version_zero,
            "`version` is 0, which no perennial writes".to_string(),
        ),
        (
            too_new,
            "version 2 is newer than this perennial's 1".to_string(),
        ),
    ];
    for (state, detail) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        store.save(&newer_state()).unwrap();
        let old_bytes = std::fs::read(store.path()).unwrap();

        let error = store.save(&state).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "not saving the state to {}: it would not load back ({detail}); this is a bug \
                 in perennial, please report it",
                store.path().display()
            )
        );
        assert_eq!(std::fs::read(store.path()).unwrap(), old_bytes);
        assert!(!temp_path(&store).exists());
    }
}

/// Each refused file: its bytes and the reason the message gives.
fn refused_files() -> Vec<(&'static str, Vec<u8>, String)> {
    vec![
        (
            "truncated",
            b"{\n  \"version\": 1,\n  \"history\": [\n    {\n      \"post\": \"evergreen/wel"
                .to_vec(),
            "truncated JSON at line 5, column 28: EOF while parsing a string".to_string(),
        ),
        (
            "garbage",
            b"PK\x03\x04 not json at all".to_vec(),
            "invalid JSON at line 1, column 1: expected value".to_string(),
        ),
        ("empty", Vec::new(), "it is empty".to_string()),
        ("blank", b"  \n\n".to_vec(), "it is empty".to_string()),
        (
            "not UTF-8",
            b"{\"version\": 1, \"mentions\": {\"cursor\": \"\xff\xfe\"}}".to_vec(),
            "it is not UTF-8 text (invalid byte at offset 39)".to_string(),
        ),
        (
            "unknown field",
            b"{\n  \"version\": 1,\n  \"failed\": {\"a\": {\"hash\": \"h\", \"retries\": 3}}\n}\n"
                .to_vec(),
            "unexpected content at line 3, column 41: unknown field `retries`, expected one \
             of `hash`, `at`, `message`, `settings`"
                .to_string(),
        ),
        (
            "missing version",
            b"{\"history\": []}".to_vec(),
            "it has no `version`".to_string(),
        ),
        (
            "version 0",
            b"{\"version\": 0, \"history\": []}".to_vec(),
            "`version` is 0, which no perennial writes".to_string(),
        ),
        (
            "version is a string",
            b"{\"version\": \"1\"}".to_vec(),
            "`version` is \"1\", not a whole number".to_string(),
        ),
        (
            "negative version",
            b"{\"version\": -1}".to_vec(),
            "`version` is -1, not a whole number".to_string(),
        ),
        (
            "not an object",
            b"[1, 2, 3]".to_vec(),
            "it is not a JSON object".to_string(),
        ),
        (
            "a one-element array",
            b"[1]".to_vec(),
            "it is not a JSON object".to_string(),
        ),
        (
            "a string",
            b"\"version 1\"".to_vec(),
            "it is not a JSON object".to_string(),
        ),
        (
            "truncated after a line break",
            b"{\n  \"version\": 1,\n".to_vec(),
            "truncated JSON at line 3, column 1: EOF while parsing a value".to_string(),
        ),
        (
            "trailing garbage",
            b"{\"version\": 1}\n{\"version\": 1}\n".to_vec(),
            "invalid JSON at line 2, column 1: trailing characters".to_string(),
        ),
    ]
}

#[test]
fn corrupt_files_are_refused_and_left_untouched() {
    let mut messages = Vec::new();
    for (name, bytes, reason) in refused_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        std::fs::write(store.path(), &bytes).unwrap();

        let error = store.load().unwrap_err();
        assert!(
            matches!(&error, StateError::Corrupt { path, .. } if path == store.path()),
            "{name}: {error:?}"
        );
        assert_eq!(std::fs::read(store.path()).unwrap(), bytes, "{name}");
        let expected = format!(
            "cannot use the state file {}: {reason}. perennial will not overwrite it; fix it or \
             move it away",
            store.path().display()
        );
        messages.push((name.to_string(), error.to_string(), expected));
    }
    crate::support::assert_all_match(messages);
}

#[test]
fn a_state_from_a_newer_perennial_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    // Fields this build does not know must not hide the version.
    let bytes = b"{\"version\": 2, \"schedule_cache\": {}}\n";
    std::fs::write(store.path(), bytes).unwrap();

    let error = store.load().unwrap_err();
    assert!(
        matches!(
            error,
            StateError::TooNew {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the state file {} has version 2, but this perennial understands versions up to 1: \
             it was written by a newer perennial. perennial will not overwrite it; upgrade \
             perennial, or move the file away",
            store.path().display()
        )
    );
    assert_eq!(std::fs::read(store.path()).unwrap(), bytes);
}

#[test]
fn an_unreadable_state_file_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    // A directory where the file should be: unreadable even when the tests run as root.
    std::fs::create_dir(store.path()).unwrap();

    let error = store.load().unwrap_err();
    assert!(
        matches!(&error, StateError::Read { path, .. } if path == store.path()),
        "{error:?}"
    );
    let message = error.to_string();
    let prefix = format!("cannot read the state file {}: ", store.path().display());
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.ends_with(". perennial will not overwrite it; fix it or move it away"),
        "{message}"
    );
}

#[test]
fn the_lock_is_exclusive_and_released_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let store = StateStore::new(&state_dir);

    let first = store.lock().unwrap();
    assert!(state_dir.join("lock").is_file());

    // A second daemon: another store on the same directory.
    let error = StateStore::new(&state_dir).lock().unwrap_err();
    assert!(
        matches!(&error, StateError::Locked { dir } if *dir == state_dir),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "another perennial is running with this state directory: {}; stop it, or give this \
             one another [state] dir",
            state_dir.display()
        )
    );
    // Readers do not need the lock.
    assert_eq!(store.load().unwrap(), None);

    drop(first);
    let again = StateStore::new(&state_dir).lock().unwrap();
    // Saving while holding the lock works.
    store.save(&full_state()).unwrap();
    drop(again);
    assert_eq!(store.load().unwrap(), Some(full_state()));
}

#[test]
fn state_dir_precedence() {
    let configured = Path::new("/etc/perennial/state");
    let cases: [(Option<&str>, &str); 6] = [
        (None, "/etc/perennial/state"),
        (Some(""), "/etc/perennial/state"),
        (Some("/var/lib/perennial"), "/var/lib/perennial"),
        (
            Some("/var/lib/perennial:/var/lib/other"),
            "/var/lib/perennial",
        ),
        (Some(":/var/lib/other"), "/var/lib/other"),
        (Some(":"), "/etc/perennial/state"),
    ];
    for (env, expected) in cases {
        assert_eq!(
            resolve_state_dir(env.map(OsStr::new), configured),
            PathBuf::from(expected),
            "$STATE_DIRECTORY = {env:?}"
        );
    }
}

// Issue 15, item 6: the lock cannot be defeated by removing or replacing the folder.

/// The state folder is removed under a store holding the lock, and a second store (a second
/// daemon) locks a new folder at the same path: the first may no longer save there.
#[test]
fn a_state_folder_replaced_under_the_lock_refuses_every_save() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let first = StateStore::new(&state_dir);
    let _first_lock = first.lock().unwrap();
    first.save(&full_state()).unwrap();

    std::fs::remove_dir_all(&state_dir).unwrap();
    let second = StateStore::new(&state_dir);
    let _second_lock = second.lock().expect("the new folder is free to lock");
    second.save(&newer_state()).unwrap();

    let error = first.save(&full_state()).unwrap_err();
    assert!(
        matches!(&error, StateError::Replaced { dir, .. } if *dir == state_dir),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "the state directory {} was replaced or removed under the running perennial (",
            state_dir.display()
        )),
        "{message}"
    );
    // The second's state is untouched, and so is the folder.
    assert_eq!(second.load().unwrap(), Some(newer_state()));
    second.save(&full_state()).unwrap();
}

/// Removed and not replaced: the save fails and does not create the folder again.
#[test]
fn a_state_folder_removed_under_the_lock_is_not_recreated_by_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let store = StateStore::new(&state_dir);
    let _lock = store.lock().unwrap();
    std::fs::remove_dir_all(&state_dir).unwrap();
    let error = store.save(&full_state()).unwrap_err();
    assert!(matches!(&error, StateError::Replaced { .. }), "{error:?}");
    assert!(error.to_string().contains("is gone"), "{error}");
    assert!(!state_dir.exists());
}

/// Only the lock file replaced (someone deleted it while the daemon ran): a second daemon
/// could lock the new one, so saving stops too.
#[test]
fn a_lock_file_replaced_under_the_lock_refuses_every_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    let _lock = store.lock().unwrap();
    std::fs::remove_file(dir.path().join("lock")).unwrap();
    let _other = StateStore::new(dir.path()).lock().unwrap();
    let error = store.save(&full_state()).unwrap_err();
    assert!(matches!(&error, StateError::Replaced { .. }), "{error:?}");
    assert!(error.to_string().contains("lock file"), "{error}");
    assert_eq!(store.load().unwrap(), None);
}

/// A stale `state.json.tmp` that is a directory (left by anything) used to fail every save
/// at "cannot create"; temporary files are now per process, and such a directory is in
/// nobody's way.
#[test]
fn a_stale_temp_directory_does_not_fail_every_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    let stale = dir.path().join("state.json.tmp");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("something"), b"kept").unwrap();
    let _lock = store.lock().unwrap();
    store.save(&full_state()).unwrap();
    store.save(&newer_state()).unwrap();
    assert_eq!(store.load().unwrap(), Some(newer_state()));
    // Not ours to delete with what is in it.
    assert!(stale.join("something").is_file());
    // Even this process's own name taken by a directory does not stop saving.
    let own = dir
        .path()
        .join(format!("state.json.tmp.{}", std::process::id()));
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join("x"), b"x").unwrap();
    store.save(&full_state()).unwrap();
    assert_eq!(store.load().unwrap(), Some(full_state()));
}

/// Records the temporary file each save writes.
#[derive(Default)]
struct TempNames(Vec<PathBuf>);

impl WriteSteps for TempNames {
    fn create_temp(&mut self, temp: &Path) -> io::Result<File> {
        self.0.push(temp.to_path_buf());
        File::create(temp)
    }
}

/// Each process writes its own temporary file, so two processes never write into one; stale
/// ones (this name or the old shared one) are removed when the lock is taken.
#[test]
fn temp_files_are_per_process_and_stale_ones_go_when_locking() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    let mut names = TempNames::default();
    store.save_with(&full_state(), &mut names).unwrap();
    let expected = dir
        .path()
        .join(format!("state.json.tmp.{}", std::process::id()));
    assert_eq!(names.0, [expected]);

    let stale = [
        "state.json.tmp",
        "state.json.tmp.1",
        "state.json.tmp.4194304",
        "state.json.tmp.77.2",
    ];
    for name in stale {
        std::fs::write(dir.path().join(name), b"{\"version\": 1, \"hist").unwrap();
    }
    std::fs::create_dir(dir.path().join("state.json.tmp.5")).unwrap();
    let unrelated = ["state.json.tmp.notes", "state.json.bak"];
    for name in unrelated {
        std::fs::write(dir.path().join(name), b"keep me").unwrap();
    }
    let _lock = store.lock().unwrap();
    for name in stale.iter().chain(&["state.json.tmp.5"]) {
        assert!(!dir.path().join(name).exists(), "{name} is still there");
    }
    for name in unrelated {
        assert!(dir.path().join(name).is_file(), "{name} was removed");
    }
    assert_eq!(store.load().unwrap(), Some(full_state()));
}

/// The mentions journal: written between saves, read back on load, emptied by a save.
mod journal {
    use super::*;
    use perennial::state::{JournalEntry, JOURNAL_FILE_NAME};

    fn reply_to(notification: &str) -> ReplyIntent {
        let mut intent = full_state().mentions.pending.remove(0);
        intent.notification = notification.to_string();
        intent
    }

    fn answered(notification: &str) -> HandledMention {
        HandledMention {
            outcome: MentionOutcome::Replied {
                status_id: format!("reply-to-{notification}"),
            },
            notification: notification.to_string(),
            ..full_state().mentions.handled.remove(0)
        }
    }

    #[test]
    fn a_reply_in_flight_and_one_done_are_read_back_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let saved = State::default();
        store.save(&saved).unwrap();
        store
            .append(&[JournalEntry::Intent(reply_to("a"))], true)
            .unwrap();
        store
            .append(&[JournalEntry::Intent(reply_to("b"))], true)
            .unwrap();
        store
            .append(&[JournalEntry::Handled(answered("a"))], false)
            .unwrap();
        drop(store); // a crash: no save
        let state = StateStore::new(dir.path()).load().unwrap().unwrap();
        assert_eq!(state.mentions.pending, vec![reply_to("b")]);
        assert_eq!(state.mentions.handled, vec![answered("a")]);
        // Saved as one object (the form earlier versions read) while one is in flight.
        let store = StateStore::new(dir.path());
        store.save(&state).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert!(json["mentions"]["pending"].is_object(), "{json}");
        assert!(!dir.path().join(JOURNAL_FILE_NAME).exists(), "folded in");
        assert_eq!(store.load().unwrap().unwrap(), state);
    }

    #[test]
    fn a_line_cut_short_is_ignored_and_a_bad_line_before_the_last_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        store.save(&State::default()).unwrap();
        store
            .append(&[JournalEntry::Intent(reply_to("a"))], true)
            .unwrap();
        let path = dir.path().join(JOURNAL_FILE_NAME);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"handled\":{\"notif").unwrap();
        let state = store.load().unwrap().unwrap();
        assert_eq!(state.mentions.pending, vec![reply_to("a")]);

        file.write_all(b"\n{}\n").unwrap();
        let before = std::fs::read(&path).unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("line 2, column"),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "left as it is");
    }
}
