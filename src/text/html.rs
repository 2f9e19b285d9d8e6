//! Turns a status's HTML `content` into the plain text a person would read.
//!
//! Servers send a status as HTML: Mastodon writes paragraphs as `<p>`, line breaks as `<br>`,
//! mentions as `<span class="h-card"><a class="u-url mention">@<span>user</span></a></span>`,
//! hashtags as `<a class="mention hashtag">#<span>tag</span></a>`, and shortens long links for
//! display by wrapping their parts in `invisible` and `ellipsis` spans. Those hidden parts are
//! part of the URL, so every piece of text inside a link is kept: the URL comes out whole, a
//! mention as `@user` and a hashtag as `#tag`. (Mastodon's HTML shows a remote mention without
//! its domain, so `@alice@example.org` in a sent status comes back as `@alice`.)
//!
//! The HTML is tokenized by `html5gum` (WHATWG tokenizer: entities, malformed markup and invalid
//! input are handled as a browser does), never by regexes; the tokenizer never panics and runs in
//! linear time, so hostile content from a stranger's mention is safe to read.

use html5gum::{DefaultEmitter, Token, Tokenizer};

/// Plain text of a status's HTML: `<p>` paragraphs separated by a blank line, `<br>` as a
/// newline, entities decoded, every other tag dropped with its text kept (so links, mentions
/// and hashtags read as written), and the content of `script`, `style` and similar elements
/// dropped. Leading and trailing whitespace is trimmed.
pub fn html_to_text(html: &str) -> String {
    let mut emitter = DefaultEmitter::default();
    // Without a tree builder the tokenizer must be told that `<script>` or `<style>` content is
    // not markup; the naive switch does that from the start tag's name.
    emitter.naively_switch_states(true);
    let mut text = TextBuilder::default();
    for token in Tokenizer::new_with_emitter(html, emitter) {
        let Ok(token) = token; // the error type is `Infallible` for a `&str` input
        match token {
            Token::StartTag(tag) => {
                let name = tag.name.as_slice();
                if is_hidden(name) {
                    text.hidden_depth += 1;
                } else if name == b"br" {
                    text.line_break();
                } else if is_block(name) {
                    text.paragraph_break();
                } else if name == b"li" {
                    text.soft_line_break();
                }
            }
            Token::EndTag(tag) => {
                let name = tag.name.as_slice();
                if is_hidden(name) {
                    text.hidden_depth = text.hidden_depth.saturating_sub(1);
                } else if is_block(name) {
                    text.paragraph_break();
                } else if name == b"br" {
                    // `</br>` is read as `<br>` by browsers (HTML spec, "in body" insertion mode).
                    text.line_break();
                }
            }
            Token::String(string) => text.push(&String::from_utf8_lossy(&string.value)),
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    text.finish()
}

/// Elements whose content is not text for a reader.
fn is_hidden(name: &[u8]) -> bool {
    matches!(
        name,
        b"script" | b"style" | b"template" | b"iframe" | b"noscript" | b"noembed" | b"noframes"
    )
}

/// Elements that stand on their own, like a paragraph.
fn is_block(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"div"
            | b"blockquote"
            | b"pre"
            | b"ul"
            | b"ol"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"hr"
            | b"table"
            | b"tr"
    )
}

/// Collects text and the breaks between pieces; a break is only written once text follows it,
/// so empty paragraphs and trailing breaks leave nothing behind.
#[derive(Default)]
struct TextBuilder {
    out: String,
    /// Newlines owed before the next text: one per `<br>`, at least 2 for a paragraph.
    pending_newlines: usize,
    /// Inside how many hidden elements (`script`, …) we are.
    hidden_depth: usize,
}

impl TextBuilder {
    fn push(&mut self, raw: &str) {
        if self.hidden_depth > 0 {
            return;
        }
        // In HTML source a newline is only whitespace (breaks are `<br>`), as a browser shows it;
        // runs of spaces are kept, as the author typed them.
        let mut piece = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\0' {
                // The tree builder drops NUL in text (HTML spec, "in body"); so do we.
                continue;
            } else if matches!(c, '\n' | '\r' | '\t' | '\u{c}') {
                while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                piece.push(' ');
            } else {
                piece.push(c);
            }
        }
        if piece.is_empty() {
            return;
        }
        if self.pending_newlines > 0 {
            // A break swallows the spaces around it; whitespace alone between two blocks
            // (source formatting) leaves the break owed.
            let rest = piece.trim_start_matches(' ');
            if rest.is_empty() {
                return;
            }
            if !self.out.is_empty() {
                let kept = self.out.trim_end_matches(' ').len();
                self.out.truncate(kept);
                for _ in 0..self.pending_newlines {
                    self.out.push('\n');
                }
            }
            piece = rest.to_string();
            self.pending_newlines = 0;
        }
        self.out.push_str(&piece);
    }

    fn paragraph_break(&mut self) {
        if self.hidden_depth == 0 {
            self.pending_newlines = self.pending_newlines.max(2);
        }
    }

    /// A `<br>`: each one counts, so two in a row leave an empty line.
    fn line_break(&mut self) {
        if self.hidden_depth == 0 {
            self.pending_newlines += 1;
        }
    }

    /// A list item starts on its own line.
    fn soft_line_break(&mut self) {
        if self.hidden_depth == 0 {
            self.pending_newlines = self.pending_newlines.max(1);
        }
    }

    fn finish(self) -> String {
        self.out.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[track_caller]
    fn check(html: &str, expected: &str) {
        assert_eq!(html_to_text(html), expected, "from {html:?}");
    }

    #[test]
    fn paragraphs_and_line_breaks() {
        check("<p>One</p><p>Two</p>", "One\n\nTwo");
        check("<p>a<br>b<br />c</p>", "a\nb\nc");
        check("<p>a<br><br>b</p>", "a\n\nb");
        check(
            "<p>first</p><p>second<br>line</p><p>third</p>",
            "first\n\nsecond\nline\n\nthird",
        );
        check("<p></p><p>only</p><p></p>", "only");
        check("plain text", "plain text");
        check("", "");
    }

    #[test]
    fn entities_are_decoded() {
        check(
            "<p>Tom &amp; Jerry &lt;3 &quot;q&quot; &#39;s&#39; &#x1F600; &eacute; &nbsp;x</p>",
            "Tom & Jerry <3 \"q\" 's' \u{1F600} é \u{a0}x",
        );
        // Unknown entities are left as written; legacy ones without `;` decode, as in a browser.
        check(
            "<p>a &bogus; b &amp c &copy2026</p>",
            "a &bogus; b & c ©2026",
        );
    }

    #[test]
    fn mastodon_links_keep_their_hidden_parts() {
        let html = concat!(
            r#"<p>Read <a href="https://www.pyopensci.org/python-package-guide/tutorials/intro.html" "#,
            r#"rel="nofollow noopener" translate="no" target="_blank">"#,
            r#"<span class="invisible">https://www.</span><span class="ellipsis">pyopensci.org/python-package-g</span>"#,
            r#"<span class="invisible">uide/tutorials/intro.html</span></a> today</p>"#
        );
        check(
            html,
            "Read https://www.pyopensci.org/python-package-guide/tutorials/intro.html today",
        );
    }

    #[test]
    fn mentions_and_hashtags() {
        let html = concat!(
            r#"<p><span class="h-card" translate="no"><a href="https://fosstodon.org/@alice" class="u-url mention">"#,
            r#"@<span>alice</span></a></span> thanks! "#,
            r#"<a href="https://fosstodon.org/tags/OpenScience" class="mention hashtag" rel="tag">#<span>OpenScience</span></a></p>"#
        );
        check(html, "@alice thanks! #OpenScience");
    }

    #[test]
    fn gotosocial_and_pleroma_shapes() {
        check(
            r#"<p>hi <a href="https://example.org/x" rel="nofollow noreferrer noopener" target="_blank">https://example.org/x</a></p>"#,
            "hi https://example.org/x",
        );
        check("line one<br/>line two", "line one\nline two");
    }

    #[test]
    fn other_tags_are_stripped_and_hidden_content_dropped() {
        check(
            "<p><strong>bold</strong> and <em>em</em></p>",
            "bold and em",
        );
        check(
            "<p>a<script>alert('<p>x</p>')</script>b<style>p{color:red}</style>c</p>",
            "abc",
        );
        check("<p>a<!-- comment -->b</p>", "ab");
        check("<!DOCTYPE html><p>x</p>", "x");
        check(
            "<ul><li>one</li><li>two</li></ul><p>after</p>",
            "one\ntwo\n\nafter",
        );
        check(
            "<blockquote><p>quoted</p></blockquote><p>reply</p>",
            "quoted\n\nreply",
        );
    }

    #[test]
    fn source_newlines_are_whitespace() {
        check("<p>one\ntwo</p>\n<p>three</p>\n", "one two\n\nthree");
        check("<p>two  spaces</p>", "two  spaces");
    }

    #[test]
    fn hostile_input_never_panics() {
        let nasty = [
            "<",
            ">",
            "</",
            "<<<>>>",
            "<p",
            "<p attr=\"unterminated",
            "<a href='x'",
            "&",
            "&#",
            "&#x;",
            "&#xFFFFFFFFFF;",
            "&#0;",
            "&#xD800;",
            "\0<p>\0</p>\0",
            "<script>",
            "</script></script></style>",
            "<style><p>never closed",
            "<template><template><p>x",
            "<![CDATA[x]]>",
            "<!--",
            "<!-- -- --!>",
            "<?xml version='1.0'?>",
            "<plaintext><p>everything after is text",
            "<p>\u{202e}rtl\u{200d}\u{fe0f}</p>",
            "<br/><br/><br/>",
            "</p></p></p>",
            "<svg><script>alert(1)</script></svg>",
            "<math><mi>x</mi></math>",
        ];
        for input in nasty {
            let _ = html_to_text(input);
        }
        check("<script>", "");
        check("</script>after", "after");
        check("<p>\u{0}x\u{0}</p>", "x");
    }

    #[test]
    fn hundred_kilobytes_of_hostile_input() {
        let unclosed = "<p><span><a href=\"".repeat(100_000 / 20);
        let _ = html_to_text(&unclosed);
        let entities = "&amp;&#x1F600;&bogus;&#".repeat(100_000 / 24);
        assert!(html_to_text(&entities).starts_with("&\u{1F600}&bogus;&#&"));
        let nested = "<div>".repeat(20_000) + "deep" + &"</div>".repeat(20_000);
        check(&nested, "deep");
        let brs = "<br>".repeat(25_000) + "x";
        assert_eq!(html_to_text(&brs), "x");
        let hidden = "<script>".repeat(12_500);
        check(&hidden, "");
        let big_text = format!("<p>{}</p>", "word ".repeat(20_000));
        assert_eq!(html_to_text(&big_text).len(), "word ".len() * 20_000 - 1);
    }
}
