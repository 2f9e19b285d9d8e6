//! Turns a post's Markdown body into the plain text a person would type in a toot.
//!
//! The body is parsed as CommonMark by `pulldown-cmark` (no regexes) and
//! rendered as plain text by these rules:
//!
//! - Blocks (paragraphs, headings, lists, code blocks, quotes, tables) are
//!   separated by exactly one blank line; the result has no leading or
//!   trailing whitespace and never two blank lines in a row.
//! - Emphasis, strong and strikethrough markers are dropped; their text stays.
//! - `[text](url)` becomes `text (url)`; when the text is the URL (ignoring a
//!   trailing `/` and a `mailto:` prefix) or is empty, just the bare URL.
//!   Autolinks `<https://…>` and reference-style links work the same way. A
//!   bare `mailto:` target is written as the address a person would type.
//!   Link titles are dropped.
//! - List items become lines starting with `• `; ordered lists keep their
//!   numbers (`3. `, `4. `… from the list's start number, counted even when
//!   the source repeats `1.`). Nested lists are indented by two spaces per
//!   level, as are continuation lines of an item. A list is its own block;
//!   items are never separated by blank lines (loose lists are tightened).
//! - Headings become their own block, text only. `#Python` at the start of a
//!   line is not a heading (CommonMark needs a space) and stays a hashtag;
//!   `@user@host` mentions are plain text too.
//! - Inline code keeps its text without backticks (its spaces untouched);
//!   fenced and indented code blocks keep their lines, except that line ends
//!   are trimmed and runs of blank lines are cut to one.
//! - Block quotes come out as ordinary paragraphs, without `>`.
//! - A soft line break is a space (CommonMark: the paragraph reflows); a hard
//!   break (two trailing spaces, a backslash, or an inline `<br>`) is a newline.
//! - Images are dropped entirely, alt text included: media is attached
//!   through the post's front matter, so an image in the body would only
//!   leave a stray description in the toot.
//! - HTML tags are dropped and the text between them kept (block-level tags
//!   such as `<p>` or `<div>` end a line); comments vanish. Entities are
//!   decoded by the parser in Markdown text; inside raw HTML blocks this
//!   module decodes the common ones (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
//!   `&apos;`, `&nbsp;` and numeric references).
//! - A thematic break (`---`) is just a paragraph break.
//! - Spaces left over (e.g. around dropped images) are tidied: runs of spaces
//!   and tabs in text collapse to one, and line ends are trimmed.
//!
//! Parser options: strikethrough is on. Tables are on, because with them off
//! a table reflows into one line of pipes and dashes; each row becomes a line
//! with its cells joined by ` | `. Footnotes are on, because with them off a
//! definition like `[^1]: https://…` silently disappears as a link reference
//! definition; a reference is written `[1]` and a definition becomes a block
//! starting `[1] `, where it stands in the source. Everything else stays off:
//! task lists (`[ ]` is kept as typed), smart punctuation (the author's quotes
//! are kept as typed), heading attributes, math, metadata blocks (front matter
//! is split off before this module), GFM alert quotes, definition lists,
//! super/subscript and wikilinks.

use std::fmt::Write as _;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// Renders Markdown as plain toot text (see the module docs for the rules).
pub fn markdown_to_text(markdown: &str) -> String {
    // CommonMark treats CR LF and a lone CR as line endings; normalising first
    // keeps stray `\r` out of code blocks and raw HTML.
    let source: std::borrow::Cow<str> = if markdown.contains('\r') {
        markdown.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        markdown.into()
    };
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES;
    // The text is about as long as the Markdown: one allocation up front rather than a
    // series of doublings (`finish` shrinks it to fit).
    let mut renderer = Renderer {
        out: String::with_capacity(source.len()),
        ..Renderer::default()
    };
    for event in Parser::new_ext(&source, options) {
        renderer.event(event);
    }
    renderer.finish()
}

/// What separates the next emitted line from the output so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    #[default]
    None,
    /// A newline.
    Line,
    /// A blank line.
    Blank,
}

/// A link whose text is being collected.
struct OpenLink<'a> {
    /// Byte offset in `Renderer::inline` where the link text starts.
    start: usize,
    /// As the parser gives it: mostly a slice of the source, so nothing is copied.
    url: CowStr<'a>,
}

#[derive(Default)]
struct Renderer<'a> {
    /// The finished text.
    out: String,
    /// Separator owed before the next line written to `out`.
    gap: Gap,
    /// Text of the current block; `\n` marks a hard break.
    inline: String,
    /// Raw text of the code block being read, if any.
    code: Option<String>,
    /// Raw text of the HTML block being read, if any.
    html: Option<String>,
    /// One entry per open list: the next item number of an ordered list.
    lists: Vec<Option<u64>>,
    /// Prefix (`• `, `3. `, `[1] `) waiting for the first line of its item; empty when
    /// none is (a marker is never empty). The buffer is reused from item to item.
    marker: String,
    links: Vec<OpenLink<'a>>,
    /// A link's text with its whitespace collapsed, while `end_link` looks at it; kept
    /// between links so its buffer is reused.
    link_text: String,
    /// Nesting depth of images being skipped.
    image_depth: usize,
    /// Cells of the table row being read.
    cells: Vec<String>,
}

impl<'a> Renderer<'a> {
    fn event(&mut self, event: Event<'a>) {
        if self.image_depth > 0 {
            // Everything inside an image (its alt text) is dropped.
            match event {
                Event::Start(Tag::Image { .. }) => self.image_depth += 1,
                Event::End(TagEnd::Image) => self.image_depth -= 1,
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => match &mut self.code {
                Some(code) => code.push_str(&text),
                None => self.push_text(&text),
            },
            Event::Code(code) | Event::InlineMath(code) | Event::DisplayMath(code) => {
                self.inline.push_str(&code)
            }
            Event::Html(html) => match &mut self.html {
                Some(buffer) => buffer.push_str(&html),
                None => self.inline_html(&html),
            },
            Event::InlineHtml(html) => self.inline_html(&html),
            Event::FootnoteReference(label) => {
                self.inline.push('[');
                self.inline.push_str(&label);
                self.inline.push(']');
            }
            Event::SoftBreak => self.push_text(" "),
            Event::HardBreak => self.hard_break(),
            Event::Rule => self.begin_block(),
            Event::TaskListMarker(done) => self.inline.push_str(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'a>) {
        match tag {
            Tag::CodeBlock(_) => {
                self.begin_block();
                self.code = Some(String::new());
            }
            Tag::HtmlBlock => {
                self.begin_block();
                self.html = Some(String::new());
            }
            Tag::List(start) => {
                self.begin_block();
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                // An item that opens straight into a nested list still shows
                // its own marker, alone on its line.
                if !self.marker.is_empty() {
                    let marker = std::mem::take(&mut self.marker);
                    self.write_lines([marker.as_str()]);
                    self.marker = marker;
                }
                self.request(Gap::Line);
                self.marker.clear();
                for _ in 1..self.lists.len() {
                    self.marker.push_str("  ");
                }
                match self.lists.last_mut() {
                    Some(Some(number)) => {
                        // Writing to a `String` cannot fail.
                        let _ = write!(self.marker, "{number}. ");
                        *number += 1;
                    }
                    _ => self.marker.push_str("• "),
                }
            }
            Tag::FootnoteDefinition(label) => {
                self.begin_block();
                self.marker.clear();
                self.marker.push('[');
                self.marker.push_str(&label);
                self.marker.push_str("] ");
            }
            Tag::TableHead | Tag::TableRow => self.cells.clear(),
            Tag::TableCell => self.inline.clear(),
            Tag::Link { dest_url, .. } => self.links.push(OpenLink {
                start: self.inline.len(),
                url: dest_url,
            }),
            Tag::Image { .. } => self.image_depth += 1,
            Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript => {}
            Tag::DefinitionListTitle | Tag::DefinitionListDefinition => {
                self.flush();
                self.request(Gap::Line);
            }
            Tag::Paragraph
            | Tag::Heading { .. }
            | Tag::BlockQuote(_)
            | Tag::Table(_)
            | Tag::DefinitionList
            | Tag::MetadataBlock(_) => self.begin_block(),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                self.write_code(&code);
                self.begin_block();
            }
            TagEnd::HtmlBlock => {
                let html = self.html.take().unwrap_or_default();
                for line in strip_html(&html).split('\n') {
                    self.push_text(line);
                    self.hard_break();
                }
                self.begin_block();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                self.request(self.block_gap());
            }
            TagEnd::Item => {
                self.flush();
                // An empty item shows nothing.
                self.marker.clear();
                self.request(Gap::Line);
            }
            TagEnd::FootnoteDefinition => {
                self.flush();
                self.marker.clear();
                self.request(self.block_gap());
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.inline);
                self.cells
                    .push(cell.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let mut row = String::new();
                for (i, cell) in self.cells.drain(..).enumerate() {
                    if i > 0 {
                        row.push_str(" |");
                    }
                    if !cell.is_empty() {
                        if i > 0 {
                            row.push(' ');
                        }
                        row.push_str(&cell);
                    }
                }
                self.write_lines([row.as_str()]);
                self.request(Gap::Line);
            }
            TagEnd::Link => self.end_link(),
            TagEnd::Image => {}
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript => {}
            TagEnd::DefinitionListTitle | TagEnd::DefinitionListDefinition => {
                self.flush();
                self.request(Gap::Line);
            }
            TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::BlockQuote(_)
            | TagEnd::Table
            | TagEnd::DefinitionList
            | TagEnd::MetadataBlock(_) => self.begin_block(),
        }
    }

    /// Ends the current block and owes the separator between blocks.
    fn begin_block(&mut self) {
        self.flush();
        self.request(self.block_gap());
    }

    /// Blocks inside a list are kept on consecutive lines; elsewhere a blank
    /// line separates them.
    fn block_gap(&self) -> Gap {
        if self.lists.is_empty() {
            Gap::Blank
        } else {
            Gap::Line
        }
    }

    fn request(&mut self, gap: Gap) {
        self.gap = self.gap.max(gap);
    }

    /// Appends text, collapsing runs of spaces and tabs into one space and
    /// never starting a line with one.
    fn push_text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        // `text[copied..]` is not yet in `inline`; `text[scanned..]` is not yet looked at.
        let mut copied = 0;
        let mut scanned = 0;
        while let Some(found) = bytes[scanned..]
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\n'))
        {
            let at = scanned + found;
            scanned = at + 1;
            // A single space after another character of this text stays as it is, so it
            // is copied along with the run it is in. (The byte before `at` is such a
            // character exactly when `at` is past the last position handled.)
            if bytes[at] == b' ' && at > copied && !matches!(bytes[at - 1], b' ' | b'\t') {
                continue;
            }
            self.inline.push_str(&text[copied..at]);
            if bytes[at] == b'\n' {
                self.hard_break();
            } else if !(self.inline.is_empty()
                || self.inline.ends_with(' ')
                || self.inline.ends_with('\n'))
            {
                self.inline.push(' ');
            }
            copied = scanned;
        }
        self.inline.push_str(&text[copied..]);
    }

    fn hard_break(&mut self) {
        let floor = self.links.last().map_or(0, |link| link.start);
        let kept = self.inline[floor..].trim_end_matches(' ').len();
        self.inline.truncate(floor + kept);
        self.inline.push('\n');
    }

    fn inline_html(&mut self, html: &str) {
        if tag_name(html).is_some_and(|name| name == "br") {
            self.hard_break();
        }
    }

    fn end_link(&mut self) {
        let Some(link) = self.links.pop() else {
            return;
        };
        let start = link.start.min(self.inline.len());
        let mut text = std::mem::take(&mut self.link_text);
        text.clear();
        for word in self
            .inline
            .get(start..)
            .unwrap_or_default()
            .split_whitespace()
        {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
        }
        let url = link.url.trim();
        // A link without a target keeps its text as it is.
        if !url.is_empty() {
            if text.is_empty() || same_target(&text, url) {
                self.inline.truncate(start);
                self.inline.push_str(strip_mailto(url).unwrap_or(url));
            } else {
                let kept = self.inline[start..].trim_end().len();
                self.inline.truncate(start + kept);
                self.inline.push_str(" (");
                self.inline.push_str(url);
                self.inline.push(')');
            }
        }
        self.link_text = text;
    }

    /// Writes the current block's text, one line per hard break.
    fn flush(&mut self) {
        if self.inline.is_empty() {
            return;
        }
        let mut inline = std::mem::take(&mut self.inline);
        self.links.clear();
        self.write_lines(
            inline
                .split('\n')
                .map(str::trim)
                .filter(|line| !line.is_empty()),
        );
        // The next block's text reuses the buffer.
        inline.clear();
        self.inline = inline;
    }

    /// Writes a code block's lines as they are, minus trailing whitespace
    /// and surplus blank lines.
    fn write_code(&mut self, code: &str) {
        let mut lines: Vec<String> = Vec::new();
        for line in code.lines().map(str::trim_end) {
            let blank = line.is_empty();
            if blank && lines.last().is_none_or(|last| last.is_empty()) {
                continue;
            }
            lines.push(line.to_owned());
        }
        while lines.last().is_some_and(|last| last.is_empty()) {
            lines.pop();
        }
        self.write_lines(lines.iter().map(String::as_str));
    }

    /// Writes lines to the output: the owed separator first, the pending
    /// item marker before the first line, list indentation before the rest.
    fn write_lines<'l>(&mut self, lines: impl IntoIterator<Item = &'l str>) {
        let mut lines = lines.into_iter();
        let Some(first) = lines.next() else {
            return;
        };
        if !self.out.is_empty() {
            self.out
                .push_str(if self.gap == Gap::Blank { "\n\n" } else { "\n" });
        }
        self.gap = Gap::None;
        let start = self.out.len();
        if self.marker.is_empty() {
            self.push_indent();
        } else {
            self.out.push_str(&self.marker);
            self.marker.clear();
        }
        self.push_trimmed(start, first);
        for line in lines {
            self.out.push('\n');
            let start = self.out.len();
            self.push_indent();
            self.push_trimmed(start, line);
        }
    }

    /// List indentation: two spaces per open list.
    fn push_indent(&mut self) {
        for _ in 0..self.lists.len() {
            self.out.push_str("  ");
        }
    }

    /// Appends `line` to the output line that starts at `start`, then trims that line's end.
    fn push_trimmed(&mut self, start: usize, line: &str) {
        self.out.push_str(line);
        let kept = self.out[start..].trim_end().len();
        self.out.truncate(start + kept);
    }

    /// Final tidy-up: trimmed line ends, at most one blank line in a row, no
    /// surrounding whitespace.
    fn finish(mut self) -> String {
        self.flush();
        if is_tidy(&self.out) {
            // What the loop below would give back, without copying it (twice).
            self.out.shrink_to_fit();
            return self.out;
        }
        let mut result = String::with_capacity(self.out.len());
        let mut previous_blank = false;
        for line in self.out.lines().map(str::trim_end) {
            let blank = line.is_empty();
            if blank && previous_blank {
                continue;
            }
            previous_blank = blank;
            result.push_str(line);
            result.push('\n');
        }
        result.trim().to_owned()
    }
}

/// Whether `text` is already what [`Renderer::finish`] makes of it: no `\r`, no leading or
/// trailing whitespace, no line ending in whitespace, never two blank lines in a row. (Then
/// each of its lines is kept as it is and the final trim takes off only the newline added
/// after the last one.)
fn is_tidy(text: &str) -> bool {
    if text.trim() != text || text.contains('\r') {
        return false;
    }
    let mut previous_blank = false;
    for line in text.split('\n') {
        let blank = line.is_empty();
        if (blank && previous_blank) || line.trim_end().len() != line.len() {
            return false;
        }
        previous_blank = blank;
    }
    true
}

/// Whether a link's text merely repeats its URL.
fn same_target(text: &str, url: &str) -> bool {
    fn normalise(s: &str) -> &str {
        let s = strip_mailto(s).unwrap_or(s);
        s.strip_suffix('/').unwrap_or(s)
    }
    normalise(text) == normalise(url)
}

fn strip_mailto(s: &str) -> Option<&str> {
    let prefix = s.get(..7)?;
    prefix
        .eq_ignore_ascii_case("mailto:")
        .then(|| &s[7..])
        .filter(|rest| !rest.is_empty())
}

/// The lower-cased name of an HTML tag such as `<br/>` or `</P>`.
fn tag_name(tag: &str) -> Option<String> {
    let inner = tag.strip_prefix('<')?;
    let inner = inner.strip_prefix('/').unwrap_or(inner);
    let name: String = inner
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Tags after which the text of a raw HTML block continues on a new line.
const LINE_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tr",
    "ul",
];

/// The text of a raw HTML block: tags and comments removed (block-level tags
/// become line breaks), common entities decoded.
fn strip_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let from_tag = &rest[open..];
        if let Some(comment) = from_tag.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let starts_tag = from_tag[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        match from_tag.find('>').filter(|_| starts_tag) {
            Some(close) => {
                let tag = &from_tag[..=close];
                if tag_name(tag).is_some_and(|name| LINE_TAGS.contains(&name.as_str())) {
                    text.push('\n');
                }
                rest = &from_tag[close + 1..];
            }
            None => {
                text.push('<');
                rest = &from_tag[1..];
            }
        }
    }
    text.push_str(rest);
    decode_entities(&text)
}

fn decode_entities(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let entity = after
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| Some((decode_entity(&after[..end])?, end)));
        match entity {
            Some((c, end)) => {
                decoded.push(c);
                rest = &after[end + 1..];
            }
            None => {
                decoded.push('&');
                rest = after;
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                    u32::from_str_radix(hex, 16).ok()?
                }
                None if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) => {
                    number.parse().ok()?
                }
                _ => return None,
            };
            char::from_u32(code).filter(|&c| c != '\0')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(markdown: &str, expected: &str) {
        assert_eq!(
            markdown_to_text(markdown),
            expected,
            "\nmarkdown: {markdown:?}"
        );
    }

    #[test]
    fn cases() {
        let cases: &[(&str, &str)] = &[
            // Paragraphs and whitespace.
            ("Hello world", "Hello world"),
            ("One\n\n\n\nTwo", "One\n\nTwo"),
            ("\n\n  Hello  \n\n", "Hello"),
            ("", ""),
            ("  \n\t\n   \n", ""),
            ("a   b\tc", "a b c"),
            // Emphasis, strong, strikethrough.
            (
                "Some *emph*, **strong** and ~~gone~~ text",
                "Some emph, strong and gone text",
            ),
            ("_a_ __b__ ***c*** ~d~", "a b c d"),
            ("\\*not emph\\*", "*not emph*"),
            // Links.
            (
                "[Perennial](https://example.org/perennial)",
                "Perennial (https://example.org/perennial)",
            ),
            (
                "[https://example.org](https://example.org)",
                "https://example.org",
            ),
            (
                "[https://example.org](https://example.org/)",
                "https://example.org/",
            ),
            (
                "[https://example.org/](https://example.org)",
                "https://example.org",
            ),
            ("See <https://example.org/a>.", "See https://example.org/a."),
            ("<https://example.org/>", "https://example.org/"),
            ("Mail <team@example.org>", "Mail team@example.org"),
            (
                "[write us](mailto:team@example.org)",
                "write us (mailto:team@example.org)",
            ),
            (
                "[team@example.org](mailto:team@example.org)",
                "team@example.org",
            ),
            (
                "Read [the docs][d].\n\n[d]: https://example.org/docs",
                "Read the docs (https://example.org/docs).",
            ),
            (
                "[docs][] and [docs]\n\n[docs]: https://e.org",
                "docs (https://e.org) and docs (https://e.org)",
            ),
            ("[](https://example.org)", "https://example.org"),
            (
                "[![logo](logo.png)](https://example.org)",
                "https://example.org",
            ),
            (
                "[**bold _and_ it**](https://e.org) works",
                "bold and it (https://e.org) works",
            ),
            (
                "[Rust](https://en.wikipedia.org/wiki/Rust_(programming_language))",
                "Rust (https://en.wikipedia.org/wiki/Rust_(programming_language))",
            ),
            ("[t](https://e.org \"A title\")", "t (https://e.org)"),
            ("[`https://e.org`](https://e.org)", "https://e.org"),
            ("[nope] here", "[nope] here"),
            ("[empty]()", "empty"),
            // Lists.
            ("- a\n- b\n- c", "• a\n• b\n• c"),
            ("* a\n+ b", "• a\n\n• b"),
            ("1. one\n2. two", "1. one\n2. two"),
            ("3. three\n4. four\n5. five", "3. three\n4. four\n5. five"),
            ("1. a\n1. b\n1. c", "1. a\n2. b\n3. c"),
            ("- a\n  - b\n    - c\n- d", "• a\n  • b\n    • c\n• d"),
            ("1. a\n   - x\n   - y\n2. b", "1. a\n  • x\n  • y\n2. b"),
            (
                "Things:\n- a\n- b\n\nAfter.",
                "Things:\n\n• a\n• b\n\nAfter.",
            ),
            ("Steps:\n1. a\n2. b", "Steps:\n\n1. a\n2. b"),
            ("- a\n\n- b", "• a\n• b"),
            ("- a\n\n  more\n- b", "• a\n  more\n• b"),
            ("- a  \n  b", "• a\n  b"),
            ("- a\n\ntext\n\n- b", "• a\n\ntext\n\n• b"),
            ("- a\n-\n- c", "• a\n• c"),
            ("- - a", "•\n  • a"),
            ("- item\n\n  ```\n  code\n  ```", "• item\n  code"),
            ("- [ ] todo\n- [x] done", "• [ ] todo\n• [x] done"),
            // Headings.
            ("# Title\nBody text", "Title\n\nBody text"),
            ("## Todo\n- a\n- b", "Todo\n\n• a\n• b"),
            ("Title\n=====\n\nBody", "Title\n\nBody"),
            ("Title\n---\nText", "Title\n\nText"),
            (
                "# Hello *world* [x](https://e.org)",
                "Hello world x (https://e.org)",
            ),
            ("### Closed ###", "Closed"),
            // Hashtags and mentions.
            ("#Python is fun\n#rust too", "#Python is fun #rust too"),
            ("# Python\n#Python", "Python\n\n#Python"),
            (
                "Thanks @alice@example.social and #FOSS!",
                "Thanks @alice@example.social and #FOSS!",
            ),
            // Code.
            ("Run `cargo test` now", "Run cargo test now"),
            ("Use `a  b` here", "Use a  b here"),
            (
                "Intro\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n\nOutro",
                "Intro\n\nfn main() {\n    println!(\"hi\");\n}\n\nOutro",
            ),
            (
                "Text\n\n    let x = 1;\n        nested;\n\nMore",
                "Text\n\nlet x = 1;\n    nested;\n\nMore",
            ),
            ("```\na\n\n\n\nb   \n```", "a\n\nb"),
            ("```\n*not emph* [x](y)\n```", "*not emph* [x](y)"),
            // Block quotes.
            (
                "> Quoted *text*\n> continues\n\nAfter",
                "Quoted text continues\n\nAfter",
            ),
            ("> one\n>\n> two", "one\n\ntwo"),
            ("> - a\n> - b", "• a\n• b"),
            // Line breaks.
            ("line one\nline two", "line one line two"),
            ("line one  \nline two", "line one\nline two"),
            ("line one\\\nline two", "line one\nline two"),
            ("a<br>b<br />c", "a\nb\nc"),
            // Images.
            ("Look ![a cat](cat.png) here", "Look here"),
            ("a ![x](y.png) ![z](w.png) b", "a b"),
            ("A\n\n![x](y.png)\n\nB", "A\n\nB"),
            ("![only](pic.png)", ""),
            // HTML.
            ("a <b>bold</b> <span class=\"x\">c</span>", "a bold c"),
            (
                "<div align=\"center\">\nHello &amp; welcome\n</div>\n\nNext",
                "Hello & welcome\n\nNext",
            ),
            ("<p>one</p><p>two</p>", "one\ntwo"),
            (
                "Before\n\n<!-- note to self -->\n\nAfter",
                "Before\n\nAfter",
            ),
            (
                "Before\n\n<!--\nmulti\nline\n-->\n\nAfter",
                "Before\n\nAfter",
            ),
            ("a <!-- hidden --> b", "a b"),
            // Entities.
            ("Fish &amp; chips &copy; &#8364;5", "Fish & chips © €5"),
            // Thematic breaks.
            ("One\n\n---\n\nTwo", "One\n\nTwo"),
            ("One\n\n***\nTwo", "One\n\nTwo"),
            ("---\n\nOnly", "Only"),
            // Tables and footnotes.
            (
                "| Name | Age |\n|------|-----|\n| Bob  | 3   |\n| Ann  |     |",
                "Name | Age\nBob | 3\nAnn |",
            ),
            (
                "Fact[^1].\n\n[^1]: Source here.",
                "Fact[1].\n\n[1] Source here.",
            ),
            // Line endings and unicode.
            (
                "Para one\r\nstill one\r\n\r\n- a\r\n- b\r\n",
                "Para one still one\n\n• a\n• b",
            ),
            ("```\r\ncode\r\n```\r\n", "code"),
            ("Grüße 🌻 *café* — 日本語 👩‍👩‍👧", "Grüße 🌻 café — 日本語 👩‍👩‍👧"),
        ];
        for (markdown, expected) in cases {
            check(markdown, expected);
        }
    }

    /// A piece of inline Markdown; link destinations are collected separately.
    #[derive(Clone, Debug)]
    enum Piece {
        Raw(String),
        Link(String, String),
        Autolink(String),
        RefLink(String, String),
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z][a-z0-9]{0,7}",
            "#[A-Za-z][a-z0-9]{0,6}",
            "@[a-z]{1,6}@[a-z]{1,6}\\.social",
            "[a-zé日🌻]{1,3}",
        ]
    }

    fn words() -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 1..4).prop_map(|words| words.join(" "))
    }

    fn url() -> impl Strategy<Value = String> {
        "https://[a-z]{1,8}\\.(org|net)(/[a-z0-9]{1,6}){0,3}/?(_\\([a-z]{1,4}\\))?"
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            4 => word().prop_map(Piece::Raw),
            1 => word().prop_map(|w| Piece::Raw(format!("*{w}*"))),
            1 => word().prop_map(|w| Piece::Raw(format!("**{w}**"))),
            1 => word().prop_map(|w| Piece::Raw(format!("~~{w}~~"))),
            1 => "[a-z]{1,6}( [a-z]{1,6})?".prop_map(|c| Piece::Raw(format!("`{c}`"))),
            1 => word().prop_map(|w| Piece::Raw(format!("![{w}](pic.png)"))),
            2 => (words(), url()).prop_map(|(text, url)| Piece::Link(text, url)),
            1 => (words(), url()).prop_map(|(text, url)| Piece::Link(format!("*{text}*"), url)),
            1 => url().prop_map(|url| Piece::Link(url.clone(), url)),
            1 => url().prop_map(|url| Piece::Link(String::new(), url)),
            1 => url().prop_map(Piece::Autolink),
            1 => (words(), url()).prop_map(|(text, url)| Piece::RefLink(text, url)),
        ]
    }

    fn line() -> impl Strategy<Value = Vec<Piece>> {
        prop::collection::vec(piece(), 0..6)
    }

    /// Pieces joined by spaces, soft breaks or hard breaks.
    fn span() -> impl Strategy<Value = Vec<(Piece, &'static str)>> {
        prop::collection::vec(
            (piece(), prop::sample::select(vec![" ", " ", "\n", "  \n"])),
            1..8,
        )
    }

    #[derive(Clone, Debug)]
    enum Block {
        Para(Vec<(Piece, &'static str)>),
        Heading(usize, Vec<Piece>),
        List(Option<u32>, Vec<Vec<Piece>>),
        Quote(Vec<(Piece, &'static str)>),
        Code(Vec<String>),
    }

    fn block() -> impl Strategy<Value = Block> {
        prop_oneof![
            3 => span().prop_map(Block::Para),
            1 => (1..=6usize, line()).prop_map(|(level, line)| Block::Heading(level, line)),
            1 => (prop::option::of(0..20u32), prop::collection::vec(line(), 1..5))
                .prop_map(|(start, items)| Block::List(start, items)),
            1 => span().prop_map(Block::Quote),
            1 => prop::collection::vec("[a-z ]{0,12}", 0..4).prop_map(Block::Code),
        ]
    }

    /// Renders the pieces, recording every link destination.
    fn render(
        pieces: &[(Piece, &str)],
        urls: &mut Vec<String>,
        definitions: &mut Vec<String>,
    ) -> String {
        let mut text = String::new();
        for (i, (piece, joiner)) in pieces.iter().enumerate() {
            if i > 0 {
                text.push_str(joiner);
            }
            match piece {
                Piece::Raw(raw) => text.push_str(raw),
                Piece::Link(label, url) => {
                    text.push_str(&format!("[{label}]({url})"));
                    urls.push(url.clone());
                }
                Piece::Autolink(url) => {
                    text.push_str(&format!("<{url}>"));
                    urls.push(url.clone());
                }
                Piece::RefLink(label, url) => {
                    let id = definitions.len();
                    text.push_str(&format!("[{label}][ref{id}]"));
                    definitions.push(format!("[ref{id}]: {url}"));
                    urls.push(url.clone());
                }
            }
        }
        text
    }

    fn spaced(pieces: &[Piece]) -> Vec<(Piece, &'static str)> {
        pieces.iter().map(|piece| (piece.clone(), " ")).collect()
    }

    /// Assembles a document; returns it with the link destinations it uses.
    fn document(blocks: &[Block], separators: &[&str], crlf: bool) -> (String, Vec<String>) {
        let mut urls = Vec::new();
        let mut definitions = Vec::new();
        let mut doc = String::new();
        for (i, block) in blocks.iter().enumerate() {
            if i > 0 {
                doc.push_str(separators[i % separators.len()]);
            }
            match block {
                Block::Para(span) => doc.push_str(&render(span, &mut urls, &mut definitions)),
                Block::Heading(level, line) => {
                    doc.push_str(&"#".repeat(*level));
                    doc.push(' ');
                    doc.push_str(&render(&spaced(line), &mut urls, &mut definitions));
                }
                Block::List(start, items) => {
                    for (n, item) in items.iter().enumerate() {
                        match start {
                            Some(start) => doc.push_str(&format!("{}. ", *start as usize + n)),
                            None => doc.push_str("- "),
                        }
                        doc.push_str(&render(&spaced(item), &mut urls, &mut definitions));
                        doc.push('\n');
                    }
                }
                Block::Quote(span) => {
                    let text = render(span, &mut urls, &mut definitions);
                    for line in text.split('\n') {
                        doc.push_str("> ");
                        doc.push_str(line);
                        doc.push('\n');
                    }
                }
                Block::Code(lines) => {
                    doc.push_str("```\n");
                    for line in lines {
                        doc.push_str(line);
                        doc.push('\n');
                    }
                    doc.push_str("```\n");
                }
            }
        }
        doc.push_str("\n\n");
        doc.push_str(&definitions.join("\n"));
        if crlf {
            doc = doc.replace('\n', "\r\n");
        }
        (doc, urls)
    }

    fn assert_tidy(text: &str) {
        assert!(!text.contains("\n\n\n"), "two blank lines in {text:?}");
        assert_eq!(text, text.trim(), "surrounding whitespace in {text:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_documents_keep_links_and_stay_tidy(
            blocks in prop::collection::vec(block(), 0..6),
            separators in prop::collection::vec(
                prop::sample::select(vec!["\n\n", "\n\n\n\n", "\n", "\n \n"]),
                1..4,
            ),
            crlf in any::<bool>(),
        ) {
            let (doc, urls) = document(&blocks, &separators, crlf);
            let text = markdown_to_text(&doc);
            assert_tidy(&text);
            for url in urls {
                prop_assert!(text.contains(&url), "{url} missing from {text:?}\ninput: {doc:?}");
            }
        }

        #[test]
        fn arbitrary_markdown_is_tidy(markdown in "[ -~\t\n\r]{0,200}|\\PC{0,100}") {
            assert_tidy(&markdown_to_text(&markdown));
        }
    }
}
