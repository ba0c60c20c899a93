#!/bin/sh
# Install or upgrade the Forewarn gateway on a bare Linux host (systemd, Python 3.11+ with venv).
#
#   sudo edge_agent/systemd/install-gateway.sh [--from SPEC] [--no-journal-limits]
#
# SPEC is what pip installs: "forewarn" (default), "forewarn==X.Y", a wheel file, or a source
# folder. Only the base install goes on a gateway (no torch, Faust or database driver).
#
# First run: creates the system user forewarn, a virtual environment /opt/forewarn/venv-<time>
# with /opt/forewarn/venv pointing at it, /etc/forewarn/edge.toml from the example (kept if
# present), a journald size limit, and the hardened unit forewarn-edge.service; starts it.
#
# Each later run is an upgrade: a new environment is built beside the running one and checked
# (`forewarn --version`, `forewarn config show` on the live config) while the old one keeps
# scoring; then the outbox is backed up with SQLite's online backup, the link is switched and
# the service restarted (SIGTERM: it flushes to Kafka and closes the outbox). If the new version
# does not stay up, the link goes back and the old one is restarted. /var/lib/forewarn (the
# outbox with every undelivered prediction) is never moved or rewritten: the new version reads
# the same file. The two newest environments are kept for a manual rollback:
#   sudo ln -sfn /opt/forewarn/venv-<older> /opt/forewarn/venv && sudo systemctl restart forewarn-edge
#
# Logs go to the journal (`journalctl -u forewarn-edge`); journald rotates them, capped by
# /etc/systemd/journald.conf.d/forewarn.conf (written unless present or --no-journal-limits).
# Paths can be moved for a trial run: PREFIX, ETC_DIR, STATE_DIR, UNIT_DIR, JOURNALD_DIR, SYSTEMCTL, SETTLE_S.
set -eu

SPEC=forewarn
JOURNAL_LIMITS=yes
while [ $# -gt 0 ]; do
  case $1 in
    --from) SPEC=${2:?--from needs a SPEC}; shift 2 ;;
    --no-journal-limits) JOURNAL_LIMITS=no; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

PREFIX=${PREFIX:-/opt/forewarn}
ETC_DIR=${ETC_DIR:-/etc/forewarn}
STATE_DIR=${STATE_DIR:-/var/lib/forewarn}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
JOURNALD_DIR=${JOURNALD_DIR:-/etc/systemd/journald.conf.d}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PYTHON=${PYTHON:-python3}
USER_NAME=forewarn
UNIT=forewarn-edge.service
HERE=$(cd "$(dirname "$0")" && pwd)

say() { printf 'install-gateway: %s\n' "$*"; }
die() { printf 'install-gateway: %s\n' "$*" >&2; exit 1; }

"$PYTHON" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || die "needs Python 3.11+ with the venv module ($PYTHON; on Debian: apt install python3-venv)"

# 1. the user and the folders
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --home "$STATE_DIR" --shell /usr/sbin/nologin "$USER_NAME"
  say "created system user $USER_NAME"
fi
install -d -m 755 "$PREFIX"
install -d -m 750 "$ETC_DIR"
install -d -m 750 -o "$USER_NAME" -g "$USER_NAME" "$STATE_DIR" 2>/dev/null || install -d -m 750 "$STATE_DIR"

# 2. a new environment beside the running one, checked before anything switches
NEW="$PREFIX/venv-$(date -u +%Y%m%dT%H%M%SZ)"
say "building $NEW from $SPEC"
"$PYTHON" -m venv "$NEW"
"$NEW/bin/pip" install --quiet --upgrade pip
"$NEW/bin/pip" install --quiet "$SPEC" || { rm -rf "$NEW"; die "pip could not install $SPEC; nothing changed"; }
VERSION=$("$NEW/bin/forewarn" --version) || { rm -rf "$NEW"; die "the new forewarn does not run; nothing changed"; }
if [ ! -f "$ETC_DIR/edge.toml" ]; then
  EXAMPLE=$("$NEW/bin/python" -c 'import edge_agent, pathlib; print(pathlib.Path(edge_agent.__file__).parent / "forewarn-edge.example.toml")')
  install -m 640 "$EXAMPLE" "$ETC_DIR/edge.toml"
  chgrp "$USER_NAME" "$ETC_DIR/edge.toml" 2>/dev/null || true
  say "wrote $ETC_DIR/edge.toml from the example: set site, [mqtt], [kafka] and [edge] gateway_id"
fi
"$NEW/bin/forewarn" config show --config "$ETC_DIR/edge.toml" >/dev/null \
  || { rm -rf "$NEW"; die "$VERSION refuses $ETC_DIR/edge.toml (above); nothing changed"; }
say "checked $VERSION against $ETC_DIR/edge.toml"

# 3. log rotation: the journal, capped
if [ "$JOURNAL_LIMITS" = yes ] && [ ! -f "$JOURNALD_DIR/forewarn.conf" ]; then
  install -d -m 755 "$JOURNALD_DIR"
  printf '[Journal]\nSystemMaxUse=256M\nSystemKeepFree=512M\nMaxRetentionSec=30day\n' > "$JOURNALD_DIR/forewarn.conf"
  "$SYSTEMCTL" restart systemd-journald || true
  say "journald capped at 256 MiB / 30 days ($JOURNALD_DIR/forewarn.conf)"
fi

# 4. the unit (always the new version's), then the switch
UNIT_SRC=$("$NEW/bin/python" -c 'import edge_agent, pathlib; print(pathlib.Path(edge_agent.__file__).parent / "systemd" / "forewarn-edge.service")')
[ -f "$UNIT_SRC" ] || UNIT_SRC="$HERE/forewarn-edge.service"
install -m 644 "$UNIT_SRC" "$UNIT_DIR/$UNIT"
"$SYSTEMCTL" daemon-reload
OLD=$(readlink "$PREFIX/venv" 2>/dev/null || true)
OUTBOX="$STATE_DIR/edge/outbox.sqlite3"
if [ -f "$OUTBOX" ]; then
  "$NEW/bin/python" - "$OUTBOX" "$OUTBOX.before-upgrade" <<'PY'
import sqlite3, sys
source, target = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
with target:
    source.backup(target)  # consistent while the running gateway writes
print(f"install-gateway: outbox backed up to {sys.argv[2]}")
PY
  chmod 640 "$OUTBOX.before-upgrade"
  chown "$USER_NAME:$USER_NAME" "$OUTBOX.before-upgrade" 2>/dev/null || true
fi
ln -sfn "$NEW" "$PREFIX/venv.next" && mv -T "$PREFIX/venv.next" "$PREFIX/venv"
"$SYSTEMCTL" enable "$UNIT" >/dev/null 2>&1 || true
"$SYSTEMCTL" restart "$UNIT"

# 5. still running a while later? else roll back
sleep "${SETTLE_S:-20}"
if "$SYSTEMCTL" is-active --quiet "$UNIT"; then
  say "$VERSION is running ($NEW)"
  # keep the running environment and the one before it
  for old in $(ls -1dt "$PREFIX"/venv-* 2>/dev/null | tail -n +3); do rm -rf "$old"; done
  exit 0
fi
if [ -n "$OLD" ]; then
  ln -sfn "$OLD" "$PREFIX/venv.next" && mv -T "$PREFIX/venv.next" "$PREFIX/venv"
  "$SYSTEMCTL" restart "$UNIT" || true
  rm -rf "$NEW"
  die "$VERSION did not stay up (journalctl -u forewarn-edge); rolled back to $OLD, the outbox untouched"
fi
die "$VERSION did not stay up: journalctl -u forewarn-edge"
