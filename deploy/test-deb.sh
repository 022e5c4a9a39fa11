#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it with `dpkg -i`, and
# checks what it installed: the files and their owners, the system user,
# `linehost --check` loading the bundled plugins from
# /usr/lib/linehost/plugins, as root and as the service's user, the
# installed host serving as that user with its plugin copies in a runtime
# directory as the unit sets one up, and the unit itself
# (`systemd-analyze verify`). Then it removes the package.
#
# It changes the machine it runs on: run it as root in CI or on a machine
# you can spare. It stops when a linehost package is installed already,
# rather than replace it (in CI, where that can only be a leftover of an
# interrupted run, it removes it). Prints `SKIPPED ...` and exits 0 where
# it cannot run: not root, no dpkg, no cargo-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "SKIPPED deb package test: $*"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "installing a package needs root"
command -v dpkg >/dev/null || skip "no dpkg: not a Debian-based system"
cargo deb --version >/dev/null 2>&1 || skip "cargo-deb is not installed (cargo install cargo-deb --locked)"

installed() { dpkg-query -W -f='${Status}' linehost 2>/dev/null | grep -q 'ok installed'; }
if installed; then
    if [ "${CI:-}" = true ]; then
        echo "removing a linehost package left by an interrupted run"
        dpkg --purge linehost >/dev/null
    else
        echo "error: a linehost package is installed; this test would replace and remove it" >&2
        echo "       (dpkg --purge linehost first, if it is a leftover of this test)" >&2
        exit 1
    fi
fi

passed=0
ok() {
    passed=$((passed + 1))
    echo "ok: $*"
}
fail() {
    echo "FAILED deb package test: $*" >&2
    exit 1
}

work=$(mktemp -d)
runtime=
had_user=no
getent passwd linehost >/dev/null && had_user=yes
host_pid=
cleanup() {
    if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then
        kill -KILL "$host_pid" 2>/dev/null || true
    fi
    if installed; then
        dpkg --purge linehost >/dev/null || true
    fi
    # The package keeps its user on purge, as Debian's packages do; this
    # test leaves the machine with the users it found.
    if [ "$had_user" = no ] && getent passwd linehost >/dev/null; then
        userdel linehost 2>/dev/null || true
    fi
    rm -rf "$work" ${runtime:+"$runtime"}
}
trap cleanup EXIT

start=$SECONDS
# The whole workspace: `-p time` is ambiguous beside the `time` crate.
cargo build --release --locked --workspace
cargo deb -p host --no-build --output "$work/"
deb=$(ls "$work"/linehost_*.deb)
echo "built $deb in $((SECONDS - start)) s"

dpkg -i "$deb"
installed || fail "dpkg -i did not leave linehost installed"
ok "installed with dpkg -i"

# What the host's trust checks require: root's, not writable by others.
for f in /usr/bin/linehost /usr/bin/linehost-cli \
    /usr/lib/linehost/plugins/libhello.so /usr/lib/linehost/plugins/libtime.so \
    /usr/lib/linehost/plugins/libchat.so \
    /etc/linehost/config.toml; do
    [ -f "$f" ] || fail "$f is missing"
    [ "$(stat -c %U "$f")" = root ] || fail "$f belongs to $(stat -c %U "$f"), not root"
    mode=$(stat -c %a "$f")
    (( (8#$mode & 8#022) == 0 )) || fail "$f is writable by group or others (mode $mode)"
done
grep -qx /etc/linehost/config.toml /var/lib/dpkg/info/linehost.conffiles ||
    fail "the config is not a conffile"
getent passwd linehost >/dev/null || fail "no system user linehost"
unit=/usr/lib/systemd/system/linehost.service
cmp -s deploy/linehost.service "$unit" || fail "$unit differs from deploy/linehost.service"
[ -L /etc/systemd/system/multi-user.target.wants/linehost.service ] ||
    fail "the unit was not enabled"
ok "files root's and not writable by others, config a conffile, user linehost, unit installed and enabled"

expect_plugins() {
    local report=$1
    for p in hello time chat; do
        grep -q "$p .*(/usr/lib/linehost/plugins/lib$p.so)" <<<"$report" ||
            fail "--check did not load $p from /usr/lib/linehost/plugins:"$'\n'"$report"
    done
}
report=$(linehost --config /etc/linehost/config.toml --check 2>&1) ||
    fail "linehost --check as root:"$'\n'"$report"
expect_plugins "$report"
ok "linehost --check as root loads hello, time and chat from /usr/lib/linehost/plugins"

# As the unit runs it: the service's user, its copies under a private
# runtime directory named by XDG_RUNTIME_DIR and TMPDIR.
runtime=$(mktemp -d)
chown linehost:linehost "$runtime"
as_service=(setpriv --reuid=linehost --regid=linehost --clear-groups
    env XDG_RUNTIME_DIR="$runtime" TMPDIR="$runtime")
report=$("${as_service[@]}" linehost --config /etc/linehost/config.toml --check 2>&1) ||
    fail "linehost --check as user linehost:"$'\n'"$report"
expect_plugins "$report"
ok "linehost --check as user linehost loads them too"

# setpriv and env exec: $! is the host's own process id.
"${as_service[@]}" linehost --config /etc/linehost/config.toml --listen 127.0.0.1:0 \
    >"$work/stdout" 2>"$work/stderr" &
host_pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/stdout")
    [ -n "$port" ] && break
    kill -0 "$host_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || fail "the installed host did not start:"$'\n'"$(cat "$work/stderr")"
log() { cat "$work/stderr"; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
read -r -t 10 greeting <&3 || fail "no greeting:"$'\n'"$(log)"
printf 'HELLO\n' >&3
read -r -t 10 reply <&3 || fail "no reply to HELLO:"$'\n'"$(log)"
exec 3>&-
[ "$greeting" = "MSG Welcome aboard !" ] || fail "greeting: $greeting"
[[ $reply == "MSG Hello from "* ]] || fail "reply to HELLO: $reply"
copies=$(find "$runtime" -mindepth 1 -maxdepth 1 -name 'host-plugins-*' | wc -l)
[ "$copies" = 1 ] || fail "expected the plugin copies in $runtime, found $copies directories"
kill -TERM "$host_pid"
for _ in $(seq 200); do
    kill -0 "$host_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$host_pid" 2>/dev/null && fail "the installed host did not stop within 20 s of SIGTERM"
status=0
wait "$host_pid" || status=$?
host_pid=
[ "$status" = 0 ] || fail "the installed host exited $status after SIGTERM:"$'\n'"$(log)"
[ -z "$(ls -A "$runtime")" ] || fail "copies left in $runtime after a clean stop: $(ls -A "$runtime")"
ok "the installed host serves HELLO as user linehost, copies in its runtime directory, and stops cleanly"

if command -v systemd-analyze >/dev/null; then
    # Needs /usr/bin/linehost to exist, so only now. It exits 0 on a
    # setting it ignores, so what it says about the unit counts too; what
    # it says about the machine's other units does not.
    verify=$(systemd-analyze verify deploy/linehost.service 2>&1) ||
        fail "systemd-analyze verify deploy/linehost.service:"$'\n'"$verify"
    if grep -q 'linehost\.service' <<<"$verify"; then
        fail "systemd-analyze verify deploy/linehost.service:"$'\n'"$verify"
    fi
    ok "systemd-analyze verify deploy/linehost.service"
else
    echo "SKIPPED systemd-analyze verify: no systemd-analyze on this machine"
fi

if [ -d /run/systemd/system ]; then
    # systemd runs here, so the package's postinst started the service.
    active=no
    for _ in $(seq 200); do
        systemctl is-active --quiet linehost && active=yes && break
        sleep 0.1
    done
    [ "$active" = yes ] ||
        fail "the service did not start:"$'\n'"$(systemctl status linehost --no-pager 2>&1 || true)"
    ok "systemctl start linehost: active (Type=notify: the host said READY=1)"
else
    echo "SKIPPED starting the unit: systemd is not running on this machine"
fi

dpkg --purge linehost >/dev/null
installed && fail "dpkg --purge left linehost installed"
for f in /usr/bin/linehost /usr/lib/linehost /etc/linehost "$unit"; do
    [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
ok "dpkg --purge removes it"
echo "deb package test took $((SECONDS - start)) s"
echo "deb: $passed passed, 0 failed"
