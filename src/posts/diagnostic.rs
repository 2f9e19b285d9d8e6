//! A problem in a user's file, located as `file:line:column` and printed for people, GitHub or tools.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem a user must fix, with where and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// A name that is not UTF-8 is written with U+FFFD in JSON (which has no other way).
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    /// 1-based line in the file as the user sees it.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes).
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn lossy_path<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

impl Diagnostic {
    /// A problem at byte `offset` of `source`, the whole text of `file`.
    pub fn at_offset(file: &Path, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_and_column(source, offset);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem about the file as a whole, reported at its first character.
    pub fn at_start(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// `::error file=…,line=…,col=…::message` for GitHub Actions annotations.
    pub fn to_github(&self) -> String {
        let mut message = self.message.clone();
        if let Some(hint) = &self.hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        format!(
            "::error file={},line={},col={}::{}",
            escape_github_property(&self.file.display().to_string()),
            self.line,
            self.column,
            escape_github_data(&message)
        )
    }
}

/// How serious a problem is: an error fails `check`, a warning does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Diagnostic {
    /// The problem for people: `path:line:col: error: message` (the first line as compilers
    /// print it, which editors and `grep` find), then, as rustc shows it, the line of
    /// `source` (the file's text, when it can be read) with a caret under the place and the
    /// hint as `= help: …`.
    pub fn render(&self, severity: Severity, source: Option<&str>) -> String {
        use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

        let (level, name) = match severity {
            Severity::Error => (Level::ERROR, "error"),
            Severity::Warning => (Level::WARNING, "warning"),
        };
        let heading = format!(
            "{}:{}:{}: {name}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        );
        let line = source.and_then(|source| source.lines().nth(self.line.saturating_sub(1)));
        let title = level.no_name().primary_title(heading.as_str());
        let group = match line {
            Some(line) => {
                // The caret spans the word at the column: up to the next space, `=` or `,`.
                let start = line
                    .char_indices()
                    .nth(self.column.saturating_sub(1))
                    .map_or(line.len(), |(i, _)| i);
                let rest = &line[start..];
                let word = rest
                    .find(|c: char| c.is_whitespace() || c == '=' || c == ',')
                    .unwrap_or(rest.len());
                let end = start + word.max(rest.chars().next().map_or(0, char::len_utf8));
                title.element(
                    Snippet::source(line)
                        .line_start(self.line)
                        .annotation(AnnotationKind::Primary.span(start..end)),
                )
            }
            None => annotate_snippets::Group::with_title(title),
        };
        let group = match &self.hint {
            Some(hint) => group.element(Level::HELP.message(hint.as_str())),
            None => group,
        };
        Renderer::plain().render(&[group])
    }
}

/// `path:line:col: message`, then the hint indented on its own line (logs and messages; `check`
/// shows people [`Diagnostic::render`]).
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// 1-based line and character column of byte `offset` in `source`.
/// An offset past the end, or inside a character, is clamped to a valid place.
pub fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

// GitHub's workflow-command escaping: data escapes %, CR, LF; properties also `:` and `,`.
fn escape_github_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_github_property(text: &str) -> String {
    escape_github_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// Suggests the closest of `candidates` to a misspelt `word`, if one is close enough to be a
/// typo, or contains the word (`tags` → `hashtags`).
pub fn closest_match<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if word.len() >= 3 {
        if let Some(containing) = candidates.iter().find(|c| c.contains(word)) {
            return Some(containing);
        }
    }
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The text of a user's file, or where its first byte that is not UTF-8 is.
pub fn decode_utf8(file: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
        Diagnostic::at_offset(
            file,
            &lossy,
            offset,
            format!("the file is not valid UTF-8 (byte {offset})"),
        )
        .with_hint("save the file as UTF-8; most editors have it under \"Save with encoding\"")
    })
}

/// A TOML or serde error from parsing `toml_text`, which starts at byte `base_offset` of
/// `file_source` (front matter inside a post, or the whole config file).
pub fn from_toml_error(
    file: &Path,
    file_source: &str,
    base_offset: usize,
    error: &toml::de::Error,
) -> Diagnostic {
    let offset = base_offset + error.span().map_or(0, |span| span.start);
    let message = error.message().trim().to_string();
    let hint = hint_for_serde_message(&message);
    if message.starts_with("duplicate key") {
        if let Some(diagnostic) = duplicate_key(file, file_source, base_offset, offset) {
            return diagnostic;
        }
    }
    let message = match (plain_words(&message), key_before(file_source, offset)) {
        (Some((expected, found)), Some(key)) => format!("`{key}` must be {expected}, not {found}"),
        (Some((expected, found)), None) => format!("expected {expected}, found {found}"),
        (None, _) => message,
    };
    Diagnostic::at_offset(file, file_source, offset, message).with_optional_hint(hint)
}

/// The key of a `key = value` line when `offset` is in its value.
fn key_before(source: &str, offset: usize) -> Option<&str> {
    let before = source.get(..offset)?;
    let line = &before[before.rfind('\n').map_or(0, |n| n + 1)..];
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.contains(char::is_whitespace)).then_some(key)
}

/// A key set twice, named, with where it was first set (the parser says only "duplicate
/// key", at the second). Looks back, from `offset`, for the last line of the same table
/// (from `base_offset` or the last `[table]` header) that sets the same key.
fn duplicate_key(
    file: &Path,
    source: &str,
    base_offset: usize,
    offset: usize,
) -> Option<Diagnostic> {
    let key_of = |line: &str| -> Option<String> {
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"').trim_matches('\'');
        (!key.is_empty()).then(|| key.to_string())
    };
    let rest = source.get(offset..)?;
    let key = key_of(rest.lines().next()?)?;
    let before = source.get(base_offset..offset)?;
    let mut first = None;
    let mut at = base_offset;
    for line in before.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            first = None; // a new table: keys before it are another table's
        } else if key_of(trimmed).as_deref() == Some(key.as_str()) && first.is_none() {
            first = Some(at + (line.len() - trimmed.len()));
        }
        at += line.len();
    }
    let (first_line, _) = line_and_column(source, first?);
    Some(
        Diagnostic::at_offset(
            file,
            source,
            offset,
            format!("`{key}` is set twice; it was first set on line {first_line}"),
        )
        .with_hint(format!("keep one `{key} = …` and remove the other")),
    )
}

/// serde's messages in a person's words: "invalid type: string "heavy", expected f64" gives
/// ("a number", "the text "heavy"").
fn plain_words(message: &str) -> Option<(&'static str, String)> {
    let parsed = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "));
    let (found, expected) = parsed?;
    let expected = match expected {
        "f32" | "f64" => "a number",
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "a whole number"
        }
        "a sequence" => "a list",
        "a boolean" | "bool" => "true or false",
        "a map" => "a table",
        "a string" => "a string in double quotes",
        _ => return None,
    };
    let found = if let Some(text) = found.strip_prefix("string ") {
        format!("the text {text}")
    } else if let Some(number) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        format!("the number {}", number.trim_matches('`'))
    } else if let Some(value) = found.strip_prefix("boolean ") {
        value.trim_matches('`').to_string()
    } else if found == "sequence" {
        "a list".to_string()
    } else if found == "map" {
        "a table".to_string()
    } else {
        found.to_string()
    };
    Some((expected, found))
}

/// A hint for serde's usual messages: a typo in a key or a value, a missing key, a wrong type.
fn hint_for_serde_message(message: &str) -> Option<String> {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        let (given, allowed) = quoted.split_first()?;
        let what = if message.starts_with("unknown field") {
            "key"
        } else {
            "value"
        };
        return Some(match closest_match(given, allowed.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("allowed {what}s: {}", allowed.join(", ")),
        });
    }
    if message.starts_with("invalid basic string") || message.starts_with("invalid literal string")
    {
        return Some("a string is missing its closing quote".to_string());
    }
    if message.starts_with("missing field") {
        return quoted.first().map(|key| format!("add `{key} = …`"));
    }
    if message.starts_with("invalid type") && message.ends_with("expected a string") {
        return Some("put the value in double quotes".to_string());
    }
    if message.starts_with("invalid type: string")
        && ["expected f64", "expected i64", "expected u64"]
            .iter()
            .any(|expected| message.ends_with(expected))
    {
        return Some("write the number without quotes".to_string());
    }
    if message.starts_with("invalid type") && message.contains("expected a sequence") {
        return Some("write a list in square brackets, e.g. [\"a\", \"b\"]".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let source = "ab\ncdé\nfg";
        assert_eq!(line_and_column(source, 0), (1, 1));
        assert_eq!(line_and_column(source, 2), (1, 3));
        assert_eq!(line_and_column(source, 3), (2, 1));
        // 'é' is two bytes; the 'f' after the newline is line 3.
        let f = source.find('f').unwrap();
        assert_eq!(line_and_column(source, f), (3, 1));
        // Inside 'é' clamps back to its start: column 3.
        let e = source.find('é').unwrap();
        assert_eq!(line_and_column(source, e + 1), (2, 3));
        assert_eq!(line_and_column(source, 999), (3, 3));
    }

    #[test]
    fn github_format_escapes_newlines_and_separators() {
        let diagnostic = Diagnostic {
            file: PathBuf::from("posts/a,b.md"),
            line: 3,
            column: 7,
            message: "bad: 100%".into(),
            hint: Some("fix it".into()),
        };
        assert_eq!(
            diagnostic.to_github(),
            "::error file=posts/a%2Cb.md,line=3,col=7::bad: 100%25%0Ahint: fix it"
        );
        assert_eq!(
            diagnostic.to_string(),
            "posts/a,b.md:3:7: bad: 100%\n  hint: fix it"
        );
    }

    #[test]
    fn people_see_the_line_with_a_caret_and_the_severity() {
        let source = "+++\ntitle = \"x\"\nweight = \"heavy\"\n+++\n";
        let diagnostic = Diagnostic {
            file: PathBuf::from("posts/tips/a.md"),
            line: 3,
            column: 10,
            message: "`weight` must be a number".into(),
            hint: Some("write the number without quotes".into()),
        };
        let shown = diagnostic.render(Severity::Error, Some(source));
        assert_eq!(
            shown,
            "posts/tips/a.md:3:10: error: `weight` must be a number\n  \
              |\n\
             3 | weight = \"heavy\"\n  \
              |          ^^^^^^^\n  \
              |\n  \
              = help: write the number without quotes"
        );
        // Without the file's text: the first line and the hint.
        let shown = diagnostic.render(Severity::Warning, None);
        assert!(
            shown.starts_with("posts/tips/a.md:3:10: warning: `weight` must be a number\n"),
            "{shown}"
        );
        assert!(
            shown.ends_with("= help: write the number without quotes"),
            "{shown}"
        );
    }

    #[test]
    fn closest_match_finds_typos_only() {
        let keys = ["title", "category", "hashtags"];
        assert_eq!(closest_match("titel", keys), Some("title"));
        assert_eq!(closest_match("hashtag", keys), Some("hashtags"));
        assert_eq!(closest_match("tags", keys), Some("hashtags"));
        assert_eq!(closest_match("tags", keys), Some("hashtags"));
        assert_eq!(closest_match("zzzzzzzz", keys), None);
    }
}
