#!/usr/bin/env python3
"""Rebuilds the seed corpora in fuzz/corpus/<target>/ from the repository's own examples.

The seeds are committed (small: a few hundred KB); run this after adding example posts or
hostile mentions, then check `git status fuzz/corpus`. Field layout of the structured
targets (`compose`, `mention`) is documented in src/fuzz_checks.rs.
"""
import pathlib
import shutil
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
SEP = "\u001e"  # fuzz_checks::FIELD_SEPARATOR


def write(target, name, data):
    path = CORPUS / target / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def split_post(text):
    """(front matter dict or {}, body) of a post file; ({}, text) when it does not parse."""
    text = text.lstrip("\ufeff")
    parts = text.split("+++\n", 2)
    if len(parts) == 3 and parts[0] == "":
        try:
            return tomllib.loads(parts[1]), parts[2]
        except tomllib.TOMLDecodeError:
            return {}, parts[2]
    return {}, text


def main():
    for target in ["post", "config", "markdown", "mention", "compose"]:
        shutil.rmtree(CORPUS / target, ignore_errors=True)
        (CORPUS / target).mkdir(parents=True)

    posts = sorted((ROOT / "posts").rglob("*.md")) + sorted(
        (ROOT / "tests" / "data" / "posts").rglob("*.md")
    )
    for i, path in enumerate(posts):
        name = path.relative_to(ROOT).as_posix().replace("/", "_")
        data = path.read_bytes()
        write("post", name, data)
        front, body = split_post(data.decode("utf-8", "replace"))
        write("markdown", name, body)
        fields = [
            body,
            front.get("short", ""),
            front.get("content_warning", ""),
            front.get("link", ""),
            " ".join(front.get("hashtags", [])),
        ]
        # Flags byte: long posts (bits 0-1), max_thread (2-3), content warning (4),
        # config default thread (5), unlisted (6); vary them across seeds.
        flags = bytes([(i * 37) & 0x7F | 0x10])
        write("compose", name, flags + SEP.join(fields).encode())

    configs = [ROOT / "config.toml", ROOT / "tests" / "data" / "cli" / "config.toml"]
    configs += sorted((ROOT / "tests" / "data" / "config").rglob("*.toml"))
    for path in configs:
        write("config", path.relative_to(ROOT).as_posix().replace("/", "_"), path.read_bytes())

    corpus = tomllib.loads((ROOT / "tests" / "mentions" / "hostile.toml").read_text())
    for entry in corpus["mention"]:
        html = entry["html"]
        if "repeat" in entry:  # a few repeats, not the 100 KB of the test corpus
            html += entry["repeat"]["piece"] * min(entry["repeat"]["times"], 3)
        html += entry.get("tail", "")
        acct = entry.get("acct", "alice@example.org")
        write("mention", entry["name"], SEP.join([acct, entry.get("spoiler", ""), html]))

    # Handwritten seeds for what the examples lack: raw HTML in Markdown, and tags for the
    # HTML model check (U+001F-separated pieces: text, tag, text...).
    write(
        "markdown",
        "raw-html.md",
        'Hello <b>bold</b>, <span class="x">text</span> and a <br> break.\n\n'
        "<div>\n<script>alert(1)</script>\n&lt;kept&gt; 1 < 2\n</div>\n\n"
        "A `<code>` span, &lt;escaped&gt;, <!-- a comment --> and <https://example.org/a>.\n",
    )
    write(
        "mention",
        "html-model-tags",
        SEP.join(["alice@example.org", "", "Hi \u001fpp\u001f there \u001fb\u001f"
                  "packaging &amp; <b>\u001fdivx\u001f end"]),
    )
    write("mention", "html-model-br", "one\u001fbr\u001ftwo\u001fpara\u001f<p>three</p>")


if __name__ == "__main__":
    main()
