#!/usr/bin/env python3
"""bench/ananas_bot.py's bot for GoToSocial, for bench/compare.sh's GoToSocial target.

ananas reads mentions with Mastodon.py's ``stream_user``: Mastodon's HTTP streaming
(server-sent events on ``GET /api/v1/streaming/user``). GoToSocial serves streaming only
as a websocket (``GET /api/v1/streaming``, its ``internal/api/client/streaming``), so out of
the box ananas never hears of a mention there: Mastodon.py takes the streaming address from
the instance's ``urls.streaming_api`` (``wss://HOST``, which it turns into ``https://HOST``),
and a plain-http GoToSocial answers neither.

The bench relays GoToSocial's websocket as server-sent events on a local address; this
subclass points Mastodon.py's streaming (and nothing else) at it, from the config's
``streaming_base``. Everything else is the same bot, with the same code path as on the fake
target: ``GuideBot`` from ananas_bot.py, started by ananas's own runner.

    python bench/ananas_gts.py CONFIG

CONFIG is ``bench/ananas_bot.cfg.in`` filled in, with ``class = ananas_gts.GtsGuideBot``
and a ``streaming_base = http://127.0.0.1:PORT`` line.
"""

from ananas_bot import GuideBot


class GtsGuideBot(GuideBot):
    def login(self):
        if not super().login():
            return False
        # Mastodon.py caches the streaming base in this (name-mangled) attribute and asks
        # the instance only while it is None (Mastodon.__get_streaming_base, internals.py).
        self.mastodon._Mastodon__streaming_base = self.config.streaming_base
        return True


if __name__ == "__main__":
    from ananas import run

    run.main()
