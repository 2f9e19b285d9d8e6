//! The fuzz targets' checks (`perennial::fuzz_checks`, the same code the targets in `fuzz/`
//! run) over every seed in `fuzz/corpus/<target>/` and every input kept in
//! `fuzz/regressions/<target>/`: a crash the fuzzer found stays fixed once its input is
//! dropped there (see `fuzz/README.md`). Runs on the stable toolchain, no fuzzer needed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use perennial::fuzz_checks;

use crate::support::repository_root;

/// A target's check: panics when an invariant does not hold.
type Check = fn(&[u8]);

/// Every target: its folder name in `fuzz/` and its check.
const TARGETS: &[(&str, Check)] = &[
    ("post", fuzz_checks::post),
    ("config", fuzz_checks::config),
    ("markdown", fuzz_checks::markdown),
    ("mention", fuzz_checks::mention),
    ("compose", fuzz_checks::compose),
];

/// The files of `fuzz/<kind>/<target>/`, sorted; the folder must exist (a missing one would
/// run nothing and pass, and a crash input dropped beside it would never run). `README.md`
/// and dot files (`.gitkeep`) are not inputs.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = repository_root().join("fuzz").join(kind).join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!("fuzz/{kind}/{target}/ cannot be read ({error}); every fuzz target has one")
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name != "README.md" && !name.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on each file; fails naming every file whose check panicked.
fn run_all(target: &str, check: Check, files: &[PathBuf]) {
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let data = std::fs::read(file).expect("a readable input");
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .err()
                .map(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!("{}: {message}", relative(file))
                })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "the `{target}` check fails on:\n{}",
        failures.join("\n")
    );
}

fn relative(file: &Path) -> String {
    file.strip_prefix(repository_root())
        .unwrap_or(file)
        .display()
        .to_string()
}

#[test]
fn every_target_has_a_seed_corpus_and_passes_on_it() {
    for &(target, check) in TARGETS {
        let seeds = inputs("corpus", target);
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{target}/ has {} seeds",
            seeds.len()
        );
        run_all(target, check, &seeds);
    }
}

#[test]
fn every_kept_crash_input_passes() {
    for &(target, check) in TARGETS {
        run_all(target, check, &inputs("regressions", target));
    }
}

#[test]
fn no_regression_folder_is_misnamed() {
    // An input dropped in `fuzz/regressions/<typo>/` would silently never run.
    let dir = repository_root().join("fuzz/regressions");
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.expect("a readable folder").path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|&(target, _)| target == name),
                "fuzz/regressions/{name}/ is not a fuzz target"
            );
        }
    }
}
