#!/usr/bin/env bash
# Installs perennial as a systemd service on this machine, from this source tree, built.
# docs/operations.md explains each step; this does them, and can be run again (an upgrade):
# it never overwrites /etc/perennial/config.toml, a token or the posts checkout.
#
#   cargo build --release --locked
#   sudo systemd/install.sh [POSTS_REPOSITORY_URL]
#
#   /usr/local/bin/perennial          target/release/perennial ($CARGO_TARGET_DIR/release/
#                                     perennial when CARGO_TARGET_DIR is set, as cargo does)
#   /etc/systemd/system/              perennial.service, perennial@.service,
#                                     perennial-sync.service, perennial-sync.timer
#   /etc/systemd/system/perennial{,@}.service.d/notify-reload.conf
#                                     systemd 253 or newer only: Type=notify-reload
#   /etc/sysusers.d/perennial.conf    the user perennial-posts, created by systemd-sysusers
#   /var/lib/perennial-posts          the posts repository, cloned as perennial-posts
#                                     (default: the repository this tree was cloned from)
#   /etc/perennial/config.toml        the checkout's config.toml (else this tree's), with
#                                     [posts] dir and [state] dir pointing at the checkout and
#                                     at the daemon's state directory
#
# Then: `perennial login` (the token) and `systemctl enable --now` (printed at the end).
#
# `install.sh --print-config FILE` only prints FILE as it would be installed (for tests).
set -euo pipefail

readonly CHECKOUT=/var/lib/perennial-posts
readonly POSTS_DIR=$CHECKOUT/posts
readonly STATE_DIR=/var/lib/perennial
readonly CONFIG=/etc/perennial/config.toml
readonly SYNC_USER=perennial-posts

say() { printf '%s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# FILE with `dir` in [posts] and in [state] set to POSTS_DIR and STATE_DIR: the line is
# replaced where it is, else added under its section's header, else the section is added at
# the end. Everything else, comments included, is kept as it is. (Two passes: the first
# finds which lines exist.)
print_config() {
    awk -v posts="dir = \"$POSTS_DIR\"" -v state="dir = \"$STATE_DIR\"" '
        /^[ \t]*\[/ {
            section = $0
            sub(/^[ \t]*\[+[ \t]*/, "", section)
            sub(/[ \t]*\].*$/, "", section)
            if (FNR == NR) { has_section[section] = 1; next }
            print
            if (!has_dir[section] && (section == "posts" || section == "state")) {
                print (section == "posts" ? posts : state)
            }
            next
        }
        FNR == NR {
            if (/^[ \t]*dir[ \t]*=/) has_dir[section] = 1
            next
        }
        section == "posts" && /^[ \t]*dir[ \t]*=/ { print posts; next }
        section == "state" && /^[ \t]*dir[ \t]*=/ { print state; next }
        { print }
        END {
            if (!has_section["posts"]) { print ""; print "[posts]"; print posts }
            if (!has_section["state"]) { print ""; print "[state]"; print state }
        }
    ' "$1" "$1"
}

# The `url` in [server] of FILE, for the login command printed at the end.
server_url() {
    awk '
        /^[ \t]*\[/ { in_server = ($0 ~ /^[ \t]*\[server\]/); next }
        in_server && /^[ \t]*url[ \t]*=/ {
            value = $0
            sub(/^[^"]*"/, "", value)
            sub(/".*$/, "", value)
            print value
            exit
        }
    ' "$1"
}

main() {
    local tree repository binary
    tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    binary=${CARGO_TARGET_DIR:-$tree/target}/release/perennial

    [[ $(id -u) == 0 ]] || die "run it as root: sudo $0 $*"
    [[ -x $binary ]] || die "$binary is missing: build it first with \`cargo build --release --locked\`"
    command -v git >/dev/null || die "git is needed: apt-get install git"
    command -v systemd-sysusers >/dev/null || die "systemd-sysusers is needed (systemd)"

    repository=${1:-}
    if [[ -z $repository && ! -d $CHECKOUT/.git ]]; then
        repository=$(git -c safe.directory="$tree" -C "$tree" remote get-url origin 2>/dev/null) ||
            die "give the posts repository's URL: $0 https://github.com/OWNER/REPOSITORY.git"
    fi

    say "binary: /usr/local/bin/perennial"
    # Beside, then renamed over: works while the old binary runs.
    install -m 0755 "$binary" /usr/local/bin/.perennial.new
    mv -f /usr/local/bin/.perennial.new /usr/local/bin/perennial

    say "units: /etc/systemd/system/perennial{,@,-sync}.service, perennial-sync.timer"
    install -m 0644 -t /etc/systemd/system \
        "$tree/systemd/perennial.service" "$tree/systemd/perennial@.service" \
        "$tree/systemd/perennial-sync.service" "$tree/systemd/perennial-sync.timer"

    # Type=notify-reload exists from systemd 253 on; 252 refuses a unit that names it, and
    # uses the units as they are (ExecReload= that waits for the reload).
    local version
    version=$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 + 0 }')
    local unit
    for unit in perennial.service perennial@.service; do
        if ((${version:-0} >= 253)); then
            install -D -m 0644 "$tree/systemd/notify-reload.conf" \
                "/etc/systemd/system/$unit.d/notify-reload.conf"
        else
            rm -f "/etc/systemd/system/$unit.d/notify-reload.conf"
        fi
    done
    if ((${version:-0} >= 253)); then
        say "systemd $version: Type=notify-reload (drop-ins perennial{,@}.service.d/notify-reload.conf)"
    else
        say "systemd ${version:-unknown}: Type=notify, ExecReload=perennial reload (waits for the reload)"
    fi

    say "user: $SYNC_USER (/etc/sysusers.d/perennial.conf)"
    install -D -m 0644 "$tree/systemd/perennial.sysusers" /etc/sysusers.d/perennial.conf
    systemd-sysusers /etc/sysusers.d/perennial.conf

    install -d -m 0755 -o "$SYNC_USER" -g "$SYNC_USER" "$CHECKOUT"
    if [[ -d $CHECKOUT/.git ]]; then
        say "posts: $CHECKOUT is already a checkout; kept"
    else
        say "posts: cloning $repository into $CHECKOUT"
        if ! runuser -u "$SYNC_USER" -- env HOME="$CHECKOUT" \
            git clone --quiet -- "$repository" "$CHECKOUT"; then
            # A repository on this machine owned by another user: git refuses to read it as
            # $SYNC_USER ("detected dubious ownership", git-config(1) safe.directory), at
            # this clone and at every pull after it.
            if [[ -d $repository ]]; then
                local path
                path=$(cd "$repository" && pwd)
                say "If git said \"detected dubious ownership\": $path belongs to another user"
                say "than $SYNC_USER. Trust it for every user of this machine, then run this again:"
                say "  sudo git config --system --add safe.directory $path"
                say "(or give the repository's URL instead of its path)."
            fi
            die "could not clone $repository"
        fi
    fi
    [[ -d $POSTS_DIR ]] || say "warning: the checkout has no posts/ folder; set [posts] dir in $CONFIG"

    install -d -m 0755 /etc/perennial
    if [[ -e $CONFIG ]]; then
        say "config: $CONFIG exists; kept"
    else
        local source=$CHECKOUT/config.toml
        [[ -f $source ]] || source=$tree/config.toml
        say "config: $CONFIG, from $source ([posts] dir = \"$POSTS_DIR\", [state] dir = \"$STATE_DIR\")"
        print_config "$source" >/etc/perennial/.config.toml.new
        chmod 0644 /etc/perennial/.config.toml.new
        mv /etc/perennial/.config.toml.new "$CONFIG"
    fi

    if [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
        # An upgrade: running daemons restart on the new binary (SIGTERM lets a post finish).
        systemctl try-restart perennial.service 'perennial@*.service'
    fi

    say ""
    say "perennial check:"
    /usr/local/bin/perennial --config "$CONFIG" check ||
        say "(posts with problems are skipped by the daemon until they are fixed)"

    say ""
    if [[ -e /etc/perennial/token ]]; then
        say "Next: sudo systemctl enable --now perennial.service perennial-sync.timer"
    else
        say "Next:"
        say "  sudo perennial login --server $(server_url "$CONFIG") --token-file /etc/perennial/token --bot"
        say "  sudo systemctl enable --now perennial.service perennial-sync.timer"
    fi
}

if [[ ${1:-} == --print-config ]]; then
    [[ $# == 2 ]] || die "usage: $0 --print-config FILE"
    print_config "$2"
else
    main "$@"
fi
