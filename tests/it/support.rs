//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use perennial::posts::diagnostic::Diagnostic;

/// Diagnostics as the human format prints them, without the file name: `LINE:COL: message`
/// and an indented hint line, each line ending in a newline.
pub fn render_without_file(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&format!("{}:{}: {}\n", d.line, d.column, d.message));
        if let Some(hint) = &d.hint {
            out.push_str(&format!("  hint: {hint}\n"));
        }
    }
    out
}

/// The fixture files in `dir` with extension `ext`, sorted.
pub fn fixtures(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.{ext} fixtures in {dir}");
    files
}

/// Asserts each `*.{input_ext}` fixture has its `*.{expected_ext}` partner and vice versa.
pub fn assert_paired(dir: &str, input_ext: &str, expected_ext: &str) {
    for input in fixtures(dir, input_ext) {
        assert!(
            input.with_extension(expected_ext).is_file(),
            "{} has no .{expected_ext} file",
            input.display()
        );
    }
    for expected in fixtures(dir, expected_ext) {
        assert!(
            expected.with_extension(input_ext).is_file(),
            "{} has no .{input_ext} file",
            expected.display()
        );
    }
}

/// Compares every (name, actual, expected) and fails once, listing every mismatch.
pub fn assert_all_match(results: Vec<(String, String, String)>) {
    let mismatches: Vec<String> = results
        .iter()
        .filter(|(_, actual, expected)| actual != expected)
        .map(|(name, actual, expected)| {
            format!("--- {name}\nexpected:\n{expected}\nactual:\n{actual}")
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} fixtures differ:\n{}",
        mismatches.len(),
        results.len(),
        mismatches.join("\n")
    );
}

/// Runs the real `perennial` binary in `dir` with `args`.
pub fn perennial(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perennial"))
        .current_dir(dir)
        .args(args)
        .env_remove("PERENNIAL_TOKEN")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("the perennial binary runs")
}

pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Sends SIGTERM to `pid`, as systemd stops a service; whether `kill` could send it.
pub fn sigterm(pid: u32) -> bool {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// What the daemon logs while a test runs, as text (the current-thread runtime runs the
/// daemon's task on the test's thread, so a thread-local subscriber sees it):
/// `let _guard = tracing::subscriber::set_default(captured.subscriber());`.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    pub fn subscriber(&self) -> impl tracing::Subscriber {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}
