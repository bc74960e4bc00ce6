#!/usr/bin/env bash
# Installs mcr from this checkout as a distribution package would lay it out:
#   $PREFIX/lib/mcr/               the application: bin/, dist/src/, production node_modules/,
#                                  package.json
#   $PREFIX/bin/mcrd|mcrctl|mcrgen small wrappers that run it with the Node.js found now
#   $PREFIX/share/doc/mcr/         README, docs, the example config, the Grafana dashboard
#   /usr/lib/systemd/system/mcr.service   the unit, its paths rewritten for $PREFIX
#   /usr/lib/sysusers.d/mcr.conf   the accounts mcr, mcrd and the group mcrctl
#   /etc/mcr/mcr.json5             the example config, only if there is none yet
# each under $DESTDIR when it is set (a package build: then nothing is run on this host).
# Installing for real (no DESTDIR, as root) also creates the accounts with systemd-sysusers and
# prints the systemctl commands to run next; it never starts or enables anything itself.
#
#   sudo scripts/install.sh                               # /usr/local
#   sudo PREFIX=/usr scripts/install.sh                   # /usr
#   DESTDIR=/tmp/stage PREFIX=/usr scripts/install.sh     # a package build, as any user
#
# Also read: NODE (the node binary the wrappers run; default: the one on PATH), UNITDIR
# (default /usr/lib/systemd/system), SYSUSERSDIR (default /usr/lib/sysusers.d).
# No tmpfiles.d file is installed: the unit's RuntimeDirectory=, StateDirectory= and
# ConfigurationDirectory= make every directory mcr uses.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *) echo "install: unknown argument $1 (settings come from PREFIX, DESTDIR, NODE, UNITDIR, SYSUSERSDIR)" >&2; exit 2 ;;
esac

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/usr/lib/systemd/system}
SYSUSERSDIR=${SYSUSERSDIR:-/usr/lib/sysusers.d}
NODE=${NODE:-$(command -v node || true)}
PREFIX=${PREFIX%/}
say() { echo "install: $*"; }
fail() { echo "install: $*" >&2; exit 1; }

for dir in "$PREFIX" "$UNITDIR" "$SYSUSERSDIR"; do
  case "$dir" in /*) ;; *) fail "$dir is not an absolute path" ;; esac
done
[ -n "$DESTDIR" ] || [ "$(id -u)" -eq 0 ] ||
  fail "installing into $PREFIX and /etc needs root (or set DESTDIR to stage the files for a package)"
[ -n "$NODE" ] || fail "no node on PATH; install Node.js 20 or later, or name it with NODE=/path/to/node"
case "$NODE" in /*) ;; *) fail "NODE=$NODE is not an absolute path" ;; esac
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "$NODE is Node.js $("$NODE" -v); mcr needs 20 or later"

# The build: npm packages when missing, then TypeScript when dist/ is older than the sources.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages into the checkout (npm ci), to build"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f dist/src/cli/mcrd.js ] || [ -n "$(find src tsconfig.json package.json -newer dist/src/cli/mcrd.js -print -quit)" ]; then
  say "building (tsc)"
  npx tsc -p tsconfig.json
fi

app="$PREFIX/lib/mcr"
stage="$DESTDIR$app.new"
say "staging the application in $stage"
rm -rf "$stage"
mkdir -p "$stage/dist"
cp -R bin "$stage/"
cp -R dist/src "$stage/dist/"
cp package.json package-lock.json README.md "$stage/"
# The production dependencies only: a copy of the checkout's, pruned of the development tools
# (no network needed, and exactly the versions that were built and tested against).
cp -R node_modules "$stage/"
(cd "$stage" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
find "$stage/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
# Swapped in whole: a running mcrd never sees half an application (restart it to run the new one).
if [ -e "$DESTDIR$app" ]; then
  say "replacing the previous $app"
  rm -rf "$DESTDIR$app.old"
  mv "$DESTDIR$app" "$DESTDIR$app.old"
  mv "$stage" "$DESTDIR$app"
  rm -rf "$DESTDIR$app.old"
else
  mv "$stage" "$DESTDIR$app"
fi
say "installed the application in $DESTDIR$app"

mkdir -p "$DESTDIR$PREFIX/bin"
for tool in mcrd mcrctl mcrgen; do
  # A wrapper, not a symlink: the service then runs the node chosen here, whatever PATH it has.
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$NODE" "$app/bin/$tool" >"$DESTDIR$PREFIX/bin/$tool"
  chmod 0755 "$DESTDIR$PREFIX/bin/$tool"
done
say "installed $PREFIX/bin/mcrd, mcrctl and mcrgen (they run $NODE)"

doc="$PREFIX/share/doc/mcr"
mkdir -p "$DESTDIR$doc"
cp README.md docs/*.md examples/mcr.json5 examples/grafana-mcr.json "$DESTDIR$doc/"
say "installed the documentation in $DESTDIR$doc"

mkdir -p "$DESTDIR$UNITDIR" "$DESTDIR$SYSUSERSDIR"
# The unit names /usr/local (the default PREFIX); it gets this PREFIX's paths instead.
sed "s|/usr/local/|$PREFIX/|g" packaging/systemd/mcr.service >"$DESTDIR$UNITDIR/mcr.service"
chmod 0644 "$DESTDIR$UNITDIR/mcr.service"
say "installed the unit $DESTDIR$UNITDIR/mcr.service (ExecStart=$PREFIX/bin/mcrd …)"
install -m 0644 packaging/sysusers.d/mcr.conf "$DESTDIR$SYSUSERSDIR/mcr.conf"
say "installed the accounts file $DESTDIR$SYSUSERSDIR/mcr.conf"

config=/etc/mcr/mcr.json5
if [ -e "$DESTDIR$config" ]; then
  say "kept the existing $DESTDIR$config (the example is $DESTDIR$doc/mcr.json5)"
else
  install -D -m 0644 examples/mcr.json5 "$DESTDIR$config"
  say "installed the example config $DESTDIR$config: edit its rules for this host's interfaces"
fi

if [ -n "$DESTDIR" ]; then
  say "staged in $DESTDIR; a package creates the accounts (systemd-sysusers mcr.conf) when it is installed"
  exit 0
fi

if command -v systemd-sysusers >/dev/null 2>&1; then
  say "creating the accounts mcr, mcrd and the group mcrctl where missing (systemd-sysusers)"
  systemd-sysusers "$SYSUSERSDIR/mcr.conf"
else
  fail "systemd-sysusers is missing: create the accounts by hand, as $SYSUSERSDIR/mcr.conf describes"
fi

cat <<EOF
install: done. Next, as root:
  mcrd --check-config $config    # after editing its rules for this host
  systemctl daemon-reload && systemctl enable --now mcr
  usermod -aG mcrctl OPERATOR    # whoever may use mcrctl (from their next login)
  journalctl -u mcr              # what mcrd says
  mcrctl list
An upgrade is this script again, then systemctl restart mcr. Uninstalling: $doc/OPERATIONS.md.
EOF
