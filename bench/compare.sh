#!/usr/bin/env bash
# perennial side by side with ananas: idle memory, memory under a burst of mentions, and
# mention-to-reply latency, both bots against the same server: the in-process fake server,
# and a real GoToSocial when one is running (`--target fake|gotosocial|both`; both by default
# when PERENNIAL_GTS_URL is set, from `eval "$(bash .ci/gotosocial start /tmp/bench-gts)"`).
# On GoToSocial it also measures the server's floor (a replier with no bot logic).
#
# Makes bench/.venv (python3 -m venv), installs the pinned ananas and Mastodon.py from
# bench/requirements.txt, then runs `cargo bench --bench compare` (which builds the release
# binary). Extra arguments go to the bench: e.g. `bench/compare.sh --runs 2` or
# `bench/compare.sh --target gotosocial --mentions 50 --burst 100`. See bench/README.md.
# Needs python3 (3.11 checked) with venv, cargo, and network to PyPI and crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=bench/.venv
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
"$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE "^(ananas|Mastodon.py) "

cargo bench --bench compare -- --python "$venv/bin/python" "$@"
