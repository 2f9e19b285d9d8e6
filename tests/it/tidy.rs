//! Tidy checks over the source text, in the manner of rust-analyzer's tidy tests
//! (`xtask/src/tidy.rs` in https://github.com/rust-lang/rust-analyzer): plain tests that read
//! every file under `src/` and fail naming the file and the line.
//!
//! They hold the layers (ARCHITECTURE.md, "Code map"): a module names (`crate::<layer>`, or
//! `super::…` up to the crate root) only its own layer and the ones below it, and a file in a
//! pure layer names no I/O. What a module names is read from its tokens: comments, doc
//! comments and string literals name nothing, and neither does an item under `#[cfg(test)]`
//! (a `mod tests { … }` block, a test-only `use`), since tests may reach anywhere.
//!
//! The checker is functions over (path, source text), [`check_file`] and [`check_layout`],
//! with tests of their own below, so that the tidy test itself can be seen to fail.
//!
//! Known limits: `super` is resolved from the file's module, so inside an inline module
//! (other than a `#[cfg(test)]` one) it is read one level too high; a test module kept in its
//! own file (`#[cfg(test)] mod tests;`) is read as ordinary code.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::support::repository_root;

/// A layer: its folder under `src/` and whether it is pure (no I/O).
struct Layer {
    folder: &'static str,
    pure: bool,
}

/// The layers, bottom to top, in the order data flows; ARCHITECTURE.md's "Code map" draws the
/// same ones. A module may name its own layer and the ones before it here, never one after.
/// A new folder under `src/` fails [`the_layers_hold`] until it is placed in this table.
const LAYERS: &[Layer] = &[
    // 1: config, post files, diagnostics, Markdown.
    Layer {
        folder: "posts",
        pure: false,
    },
    // 2: counting, composing, reading HTML, composing replies.
    Layer {
        folder: "text",
        pure: true,
    },
    // 3: what the daemon remembers and its file.
    Layer {
        folder: "state",
        pure: false,
    },
    // 4: schedule and plan, deciding on mentions.
    Layer {
        folder: "plan",
        pure: true,
    },
    // 5: the networks (the Mastodon client API), retry and token.
    Layer {
        folder: "network",
        pure: false,
    },
    // 6: the loop, publishing, replies, watching, systemd, logging, clock.
    Layer {
        folder: "daemon",
        pure: false,
    },
    // 7: subcommands, the command line, printing for people.
    Layer {
        folder: "commands",
        pure: false,
    },
];

/// Files at the top of `src/` that are in no layer, and why they may name anything.
const ROOT_FILES: &[(&str, &str)] = &[
    ("lib.rs", "the crate root, which declares the layers"),
    ("main.rs", "the binary, on top of everything"),
    (
        "build.rs",
        "the build script (Cargo.toml's `build`), compiled on its own",
    ),
    (
        "fuzz_checks.rs",
        "test machinery (the `testing` feature), not in a release build",
    ),
];

/// What a file in a pure layer must not name: paths, matched on their leading segments
/// (`std::fs` matches `std::fs::read` and `use std::{fs, …}`)…
const IO_PATHS: &[&str] = &[
    "std::fs",
    "tokio::fs",
    "std::net",
    "tokio::net",
    "std::process",
    "tokio::process",
    "std::env",
    "std::io::stdout",
    "std::io::stderr",
    "std::io::stdin",
    "io::stdout",
    "io::stderr",
    "io::stdin",
    "tokio::io::stdout",
    "tokio::io::stderr",
    "tokio::io::stdin",
    "reqwest",
    "megalodon",
    "tokio_tungstenite",
    "walkdir",
    "notify",
    "sd_notify",
];

/// …and macros.
const IO_MACROS: &[&str] = &["println", "print", "eprintln", "eprint", "dbg"];

/// One broken rule: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// The file, relative to the repository root, with `/`.
    path: String,
    /// 1-based; 0 when the rule is about a folder or a file as a whole.
    line: usize,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.message)
        }
    }
}

/// `path`'s components as strings (`src/text/reply.rs` → `["src", "text", "reply.rs"]`).
fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// The index in [`LAYERS`] of the file at `path` (relative to the repository root), or
/// `None` for a file in no layer (the root files, or a folder not in the table, which
/// [`check_layout`] reports).
fn layer_of(path: &Path) -> Option<usize> {
    let parts = components(path);
    if parts.len() < 3 || parts[0] != "src" {
        return None;
    }
    LAYERS.iter().position(|layer| layer.folder == parts[1])
}

/// The module path of the file at `path` (`src/text/reply.rs` → `["text", "reply"]`,
/// `src/text/mod.rs` → `["text"]`).
fn module_of(path: &Path) -> Vec<String> {
    let mut parts = components(path);
    parts.remove(0);
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem);
        }
    }
    parts
}

/// The rules about one file; `path` is relative to the repository root (`src/text/reply.rs`).
fn check_file(path: &Path, source: &str) -> Vec<Violation> {
    let Some(own) = layer_of(path) else {
        return Vec::new();
    };
    let shown = components(path).join("/");
    let module = module_of(path);
    let tokens = outside_test_code(tokens(source));
    let mut violations = Vec::new();
    let mut report = |line: usize, message: String| {
        violations.push(Violation {
            path: shown.clone(),
            line,
            message,
        })
    };
    for named in paths(&tokens) {
        // The layer a path names from the crate root: `crate::<layer>`, or enough `super`s.
        let supers = named.iter().take_while(|(name, _)| name == "super").count();
        let from_root = if named[0].0 == "crate" {
            Some(1)
        } else if supers > 0 && supers == module.len() {
            Some(supers)
        } else {
            None
        };
        if let Some((name, line)) = from_root.and_then(|index| named.get(index)) {
            if let Some(layer) = LAYERS.iter().position(|layer| layer.folder == name) {
                if layer > own {
                    let spelt: Vec<&str> = named[..=from_root.unwrap()]
                        .iter()
                        .map(|(name, _)| name.as_str())
                        .collect();
                    report(
                        *line,
                        format!(
                            "`{}` names layer {} ({}), above this file's layer {} ({})",
                            spelt.join("::"),
                            layer + 1,
                            name,
                            own + 1,
                            LAYERS[own].folder
                        ),
                    );
                }
            }
        }
        if LAYERS[own].pure {
            for io in IO_PATHS {
                let io: Vec<&str> = io.split("::").collect();
                let matches = named.len() >= io.len()
                    && named.iter().zip(&io).all(|((name, _), io)| name == io);
                if matches {
                    report(
                        named[io.len() - 1].1,
                        format!(
                            "`{}` is I/O, in the pure layer `{}`",
                            io.join("::"),
                            LAYERS[own].folder
                        ),
                    );
                }
            }
        }
    }
    if LAYERS[own].pure {
        for (index, token) in tokens.iter().enumerate() {
            let Tok::Ident(name) = &token.tok else {
                continue;
            };
            let bang = tokens.get(index + 1).map(|t| &t.tok) == Some(&Tok::Punct('!'));
            let not_equal = tokens.get(index + 2).map(|t| &t.tok) == Some(&Tok::Punct('='));
            if bang && !not_equal && IO_MACROS.contains(&name.as_str()) {
                report(
                    token.line,
                    format!(
                        "`{name}!` is I/O, in the pure layer `{}`",
                        LAYERS[own].folder
                    ),
                );
            }
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

/// The rules about what is at the top of `src/`: each entry (name, is a folder) is a layer's
/// folder or one of [`ROOT_FILES`], and every layer's folder is there.
fn check_layout(entries: &[(String, bool)]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (name, is_dir) in entries {
        let placed = if *is_dir {
            LAYERS.iter().any(|layer| layer.folder == name)
        } else {
            !name.ends_with(".rs") || ROOT_FILES.iter().any(|(file, _)| file == name)
        };
        if !placed {
            violations.push(Violation {
                path: format!("src/{name}"),
                line: 0,
                message: "is in no layer: place it in LAYERS (tests/it/tidy.rs) and in \
                          ARCHITECTURE.md's \"Code map\""
                    .to_owned(),
            });
        }
    }
    for layer in LAYERS {
        if !entries
            .iter()
            .any(|(name, is_dir)| *is_dir && name == layer.folder)
        {
            violations.push(Violation {
                path: format!("src/{}", layer.folder),
                line: 0,
                message: "is in LAYERS (tests/it/tidy.rs) but not in src/".to_owned(),
            });
        }
    }
    violations.sort();
    violations
}

/// A token, as far as the rules need one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The tokens of Rust source, without comments, literals (strings, characters, numbers) and
/// lifetimes; each with its 1-based line.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while let Some(c) = at(i) {
        let next = at(i + 1);
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest.
            let mut depth = 0;
            while let Some(c) = at(i) {
                if c == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c == '\n');
                    i += 1;
                }
            }
        } else if let Some(end) = string_end(&chars, i) {
            line += chars[i..end].iter().filter(|&&c| c == '\n').count();
            i = end;
        } else if c == '\'' {
            if next == Some('\\') {
                // An escaped character: `'\n'`, `'\''`, `'\u{1F600}'`.
                i += 3;
                while at(i).is_some_and(|c| c != '\'') {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == Some('\'') {
                i += 3;
            } else {
                // A lifetime or a label: its name is read as an identifier, which names nothing.
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            if c == 'r' && next == Some('#') {
                // A raw identifier: `r#type`.
                i += 2;
            }
            let start = i;
            while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                line,
            });
        } else if c.is_ascii_digit() {
            while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Where the string literal starting at `chars[start]` ends (the index after it), if one
/// starts there: `"…"`, `b"…"`, `c"…"`, and raw `r"…"`, `r#"…"#`, `br#"…"#`, `cr"…"`.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    if matches!(chars.get(i), Some('b' | 'c')) {
        i += 1;
    }
    let raw = chars.get(i) == Some(&'r');
    if raw {
        i += 1;
    }
    let mut hashes = 0;
    while raw && chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if !raw => i += 2,
            '"' if chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes =>
            {
                return Some(i + 1 + hashes);
            }
            _ => i += 1,
        }
    }
    Some(chars.len())
}

/// The tokens without the items under `#[cfg(test)]` (a `mod tests { … }` block, a `use`, a
/// function, a field…).
fn outside_test_code(tokens: Vec<Token>) -> Vec<Token> {
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".to_owned()),
        Tok::Punct('('),
        Tok::Ident("test".to_owned()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut kept = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_cfg_test = tokens.len() - i >= cfg_test.len()
            && tokens[i..i + cfg_test.len()]
                .iter()
                .zip(&cfg_test)
                .all(|(token, tok)| &token.tok == tok);
        if is_cfg_test {
            i = end_of_item(&tokens, i + cfg_test.len());
        } else {
            kept.push(tokens[i].clone());
            i += 1;
        }
    }
    kept
}

/// The index after the item that starts at `tokens[start]` (its other attributes included):
/// after its block, or its `;` or `,` outside any bracket, or at the bracket that closes
/// what encloses it.
fn end_of_item(tokens: &[Token], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(start) {
        match token.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(close @ (')' | ']' | '}')) => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 && close == '}' {
                    return i + 1;
                }
            }
            Tok::Punct(';' | ',') if depth == 0 => return i + 1,
            _ => {}
        }
    }
    tokens.len()
}

/// A path named in the code: its segments, each with its line. A `use` tree gives one path
/// per leaf (`use std::{fs, io::stdout}` gives `std::fs` and `std::io::stdout`).
type NamedPath = Vec<(String, usize)>;

/// Every path in `tokens`, each from its first segment.
fn paths(tokens: &[Token]) -> Vec<NamedPath> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts = matches!(tokens[i].tok, Tok::Ident(_))
            && (i == 0
                || tokens[i - 1].tok != Tok::PathSep
                // A leading `::` (`::std::fs`), not one after a segment or a generic.
                || (i >= 2 && !matches!(tokens[i - 2].tok, Tok::Ident(_) | Tok::Punct('>'))));
        if starts {
            i = path_tree(tokens, i, Vec::new(), &mut found);
        } else {
            i += 1;
        }
    }
    found
}

/// Reads the path or `use` tree at `tokens[i]` after `prefix`, adds the paths it names to
/// `found`, and returns the index after it.
fn path_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: NamedPath,
    found: &mut Vec<NamedPath>,
) -> usize {
    loop {
        match tokens.get(i).map(|token| &token.tok) {
            Some(Tok::Ident(name)) => {
                prefix.push((name.clone(), tokens[i].line));
                i += 1;
            }
            Some(Tok::Punct('{')) if !prefix.is_empty() => {
                // A group: `prefix::{a, b::c, d::{e, f}, g as h, *}`.
                i += 1;
                loop {
                    match tokens.get(i).map(|token| &token.tok) {
                        None => return i,
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Ident(name)) if name == "as" => i += 2,
                        Some(Tok::Ident(_)) => i = path_tree(tokens, i, prefix.clone(), found),
                        Some(_) => i += 1,
                    }
                }
            }
            _ => break,
        }
        if tokens.get(i).map(|token| &token.tok) == Some(&Tok::PathSep) {
            i += 1;
        } else {
            break;
        }
    }
    if !prefix.is_empty() {
        found.push(prefix);
    }
    i
}

/// The files under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| entry.into_path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_layers_hold() {
    let root = repository_root();
    let src = root.join("src");
    let entries: Vec<(String, bool)> = std::fs::read_dir(&src)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.file_type().unwrap().is_dir())
        })
        .collect();
    let mut violations = check_layout(&entries);
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).unwrap();
        violations.extend(check_file(file.strip_prefix(&root).unwrap(), &text));
    }
    let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        violations.is_empty(),
        "the layers do not hold (ARCHITECTURE.md, \"Code map\"; the table is LAYERS in \
         tests/it/tidy.rs), {} problems:\n{}",
        violations.len(),
        shown.join("\n")
    );
}

/// The checker's own tests: each rule fires on what it must, and on nothing else.
mod checker {
    use super::*;

    fn check(path: &str, source: &str) -> Vec<String> {
        check_file(Path::new(path), source)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_upward_import_is_reported_with_file_and_line() {
        assert_eq!(
            check(
                "src/text/reply.rs",
                "//! Replies.\n\nuse crate::network::mastodon::Mention;\n"
            ),
            [
                "src/text/reply.rs:3: `crate::network` names layer 5 (network), above this \
              file's layer 2 (text)"
            ]
        );
        // In a group, on the line of the layer's name; a path in an expression too.
        assert_eq!(
            check(
                "src/daemon/mod.rs",
                "use crate::{\n    posts::Post,\n    commands::show,\n};\nfn f() { crate::commands::run(); }\n"
            ),
            [
                "src/daemon/mod.rs:3: `crate::commands` names layer 7 (commands), above this \
                 file's layer 6 (daemon)",
                "src/daemon/mod.rs:5: `crate::commands` names layer 7 (commands), above this \
                 file's layer 6 (daemon)",
            ]
        );
        // `super` up to the crate root is `crate`.
        assert_eq!(
            check(
                "src/plan/schedule.rs",
                "use super::super::network::retry;\n"
            ),
            [
                "src/plan/schedule.rs:1: `super::super::network` names layer 5 (network), above \
              this file's layer 4 (plan)"
            ]
        );
    }

    #[test]
    fn its_own_layer_and_those_below_may_be_named() {
        let source = "use crate::daemon::clock::Clock;\nuse crate::posts::Post;\n\
                      use super::publish;\npub(crate) fn f() {}\nuse self::x;\n";
        assert_eq!(
            check("src/daemon/mentions.rs", source),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_root_files_may_name_anything() {
        let source = "use crate::commands::cli;\nfn main() { println!(\"x\"); }\n";
        for path in ["src/lib.rs", "src/main.rs", "src/fuzz_checks.rs"] {
            assert_eq!(check(path, source), Vec::<String>::new(), "{path}");
        }
    }

    #[test]
    fn io_in_a_pure_file_is_reported() {
        let source = "use std::{env, io::{self, stdout}};\n\
                      fn f() {\n    let _ = ::std::fs::read(\"a\");\n    println!(\"x\");\n    \
                      let same = print != 2;\n}\n";
        assert_eq!(
            check("src/plan/mod.rs", source),
            [
                "src/plan/mod.rs:1: `std::env` is I/O, in the pure layer `plan`",
                "src/plan/mod.rs:1: `std::io::stdout` is I/O, in the pure layer `plan`",
                "src/plan/mod.rs:3: `std::fs` is I/O, in the pure layer `plan`",
                "src/plan/mod.rs:4: `println!` is I/O, in the pure layer `plan`",
            ]
        );
        assert_eq!(
            check(
                "src/text/count.rs",
                "use tokio::fs;\nfn f() { eprintln!(); }\n"
            ),
            [
                "src/text/count.rs:1: `tokio::fs` is I/O, in the pure layer `text`",
                "src/text/count.rs:2: `eprintln!` is I/O, in the pure layer `text`",
            ]
        );
        // Outside the pure layers, I/O is what the code is for.
        assert_eq!(check("src/daemon/watch.rs", source), Vec::<String>::new());
    }

    #[test]
    fn comments_and_strings_name_nothing() {
        let source = "//! Uses `crate::commands::show` and `std::fs`.\n\
                      /// See [`crate::daemon`]; println!\n\
                      /* crate::network /* nested crate::daemon */ still a comment */\n\
                      // crate::commands\n\
                      const A: &str = \"crate::commands and \\\" std::fs\";\n\
                      const B: &str = r#\"crate::network \" println!(\"x\") \"#;\n\
                      const C: char = '\"';\n\
                      fn f<'a>(x: &'a str) -> &'a str { x }\n\
                      use crate::daemon::Daemon;\n";
        assert_eq!(
            check("src/text/compose.rs", source),
            [
                "src/text/compose.rs:9: `crate::daemon` names layer 6 (daemon), above this \
              file's layer 2 (text)"
            ]
        );
    }

    #[test]
    fn test_code_is_not_read() {
        let source = "fn a() {}\n\
                      #[cfg(test)]\n\
                      mod tests {\n    use crate::network::Server;\n    \
                      fn t() { println!(\"{}\", std::fs::read(\"a\").is_ok()); }\n}\n\
                      #[cfg(test)]\nuse crate::commands::show;\n\
                      use crate::daemon::Daemon;\n";
        assert_eq!(
            check("src/text/html.rs", source),
            [
                "src/text/html.rs:9: `crate::daemon` names layer 6 (daemon), above this file's \
              layer 2 (text)"
            ]
        );
    }

    #[test]
    fn every_folder_and_file_at_the_top_of_src_is_placed() {
        let mut entries: Vec<(String, bool)> = LAYERS
            .iter()
            .map(|layer| (layer.folder.to_owned(), true))
            .chain(ROOT_FILES.iter().map(|(file, _)| (file.to_string(), false)))
            .collect();
        assert_eq!(check_layout(&entries), Vec::<Violation>::new());
        entries.push(("gui".to_owned(), true));
        entries.push(("util.rs".to_owned(), false));
        entries.retain(|(name, _)| name != "plan");
        let shown: Vec<String> = check_layout(&entries)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "src/gui: is in no layer: place it in LAYERS (tests/it/tidy.rs) and in \
                 ARCHITECTURE.md's \"Code map\"",
                "src/plan: is in LAYERS (tests/it/tidy.rs) but not in src/",
                "src/util.rs: is in no layer: place it in LAYERS (tests/it/tidy.rs) and in \
                 ARCHITECTURE.md's \"Code map\"",
            ]
        );
        // A file in a folder that is in no layer is judged by no layer rule; the folder is
        // reported once by check_layout.
        assert_eq!(
            check("src/gui/window.rs", "use crate::commands::x;\n"),
            Vec::<String>::new()
        );
    }
}
