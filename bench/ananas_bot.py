#!/usr/bin/env python3
"""An ananas bot that does what perennial's mention replies do, for bench/compare.sh.

It answers every mention with the packaging guide's title and link when the mention
names one of the guide's keywords, and with a short list of topics otherwise; replies
are unlisted and threaded under the mention (``in_reply_to_id``). The text is the one
perennial sends, so the two bots post the same replies.

Run it as ananas runs any bot (the config names the class, as ``ananas CONFIG`` expects):

    python bench/ananas_bot.py CONFIG

CONFIG is ``bench/ananas_bot.cfg.in`` with ``@URL@`` and ``@TOKEN@`` filled in.
"""

import re

from ananas import PineappleBot, html_strip_tags, reply


class GuideBot(PineappleBot):
    def start(self):
        self.guide_title = self.config.guide_title
        self.guide_url = self.config.guide_url
        keywords = self.config.guide_keywords
        if isinstance(keywords, str):
            keywords = keywords.split(",")
        self.keywords = {k.strip().lower() for k in keywords}
        self.visibility = self.config.reply_visibility or "unlisted"

    @reply
    def answer(self, mention, user):
        text = html_strip_tags(mention["content"]).lower()
        words = set(re.findall(r"[#\w][\w.]*", text))
        words |= {w.lstrip("#").rstrip(".") for w in words}
        if words & self.keywords:
            body = "This guide should help:\n{}: {}".format(self.guide_title, self.guide_url)
        else:
            body = "I can point you to our guides on: packaging. Mention me with one of those words."
        self.mastodon.status_post(
            "@{} {}".format(user["acct"], body),
            in_reply_to_id=mention["id"],
            visibility=self.visibility,
        )


if __name__ == "__main__":
    # ananas's own runner: it reads CONFIG, imports `class = ananas_bot.GuideBot` (this
    # file's folder is on sys.path) and keeps the bot running until SIGTERM/SIGINT.
    from ananas import run

    run.main()
