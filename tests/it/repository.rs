//! What a user downloads and reads beside the code: the release build's profile, the
//! dependencies and what each is for, and comments that cite sources anyone can open.

use crate::support::repository_root;

fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(repository_root().join("Cargo.toml")).unwrap();
    text.parse().unwrap()
}

#[test]
fn the_release_binary_is_stripped() {
    let manifest = manifest();
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("strip"), Some(&toml::Value::Boolean(true)));
}

/// Issue 19 item 1: on a glibc that reads them (2.36 and later), the binary's relative
/// relocations are packed (DT_RELR, src/build.rs), which keeps some 650 KB of relocation table
/// out of the daemon's resident memory. Read from the binary's dynamic section with `readelf`
/// (binutils, which the C compiler that links Rust code comes with).
#[test]
fn the_binary_packs_its_relocations_where_the_glibc_reads_them() {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let glibc = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let glibc: Vec<u32> = glibc
        .to_str()
        .unwrap()
        .split('.')
        .map(|part| part.parse().unwrap())
        .collect();
    let output = std::process::Command::new("readelf")
        .args(["--dynamic", env!("CARGO_BIN_EXE_perennial")])
        .output()
        .expect("readelf (binutils) runs");
    assert!(output.status.success(), "{output:?}");
    let dynamic = String::from_utf8(output.stdout).unwrap();
    let packed = dynamic.contains("(RELR)");
    if glibc[..] >= [2, 36][..] {
        assert!(packed, "glibc {glibc:?}: no DT_RELR in\n{dynamic}");
        // The table of RELA entries that is left holds only what cannot be packed.
        let rela_bytes: u64 = dynamic
            .lines()
            .find(|line| line.contains("(RELASZ)"))
            .and_then(|line| line.split_whitespace().nth(2))
            .map_or(0, |bytes| bytes.parse().unwrap());
        assert!(rela_bytes < 64 * 1024, "RELASZ {rela_bytes} bytes");
    } else {
        assert!(!packed, "glibc {glibc:?} cannot load DT_RELR:\n{dynamic}");
    }
}

#[test]
fn every_dependency_is_used_and_says_what_it_is_for() {
    let text = std::fs::read_to_string(repository_root().join("Cargo.toml")).unwrap();
    let manifest = manifest();
    let mut sources = String::new();
    for dir in ["src", "benches"] {
        for entry in walkdir::WalkDir::new(repository_root().join(dir)) {
            let entry = entry.unwrap();
            if entry.path().extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    for name in manifest["dependencies"].as_table().unwrap().keys() {
        let path = name.replace('-', "_");
        assert!(
            sources.contains(&format!("{path}::")) || sources.contains(&format!("use {path}")),
            "the dependency `{name}` is not used in src/ or benches/"
        );
    }
    // megalodon is the design card's crate: Cargo.toml says what it is used for.
    let line = text
        .lines()
        .position(|line| line.starts_with("megalodon "))
        .unwrap();
    let comment = text.lines().nth(line - 1).unwrap();
    assert!(
        comment.starts_with('#') && comment.contains("Account"),
        "{comment}"
    );
}

#[test]
fn comments_cite_only_sources_in_the_repository_or_public() {
    // Notes outside the repository mean nothing to a reader of the code.
    let banned = [
        concat!("shared", "/"),
        concat!("product", ".md"),
        concat!("fediverse", "-facts"),
    ];
    let mut found = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        for entry in walkdir::WalkDir::new(repository_root().join(dir)) {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for (number, line) in text.lines().enumerate() {
                if banned.iter().any(|banned| line.contains(banned)) {
                    found.push(format!("{}:{}: {line}", entry.path().display(), number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Issue 17 item 3: the README's examples call `perennial`, so it says how to get that
/// command before the first of them, and the first command works without it.
#[test]
fn the_readme_says_how_to_get_the_command_before_using_it() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    let install = readme
        .find("cargo install --path . --locked")
        .expect("the README says how to install the command");
    let first_use = readme
        .find("perennial check")
        .expect("the README shows check");
    assert!(
        install < first_use,
        "installing comes after the first `perennial` example"
    );
    assert!(readme.contains("systemd/install.sh"));
    assert!(readme.starts_with("# perennial\n\n```sh\ncargo run --release -- run --dry-run"));
    // `cargo install` installs the binary under the name the examples use.
    let manifest = manifest();
    let bins = manifest["bin"].as_array().unwrap();
    assert!(bins
        .iter()
        .any(|bin| bin["name"].as_str() == Some("perennial")));
}
