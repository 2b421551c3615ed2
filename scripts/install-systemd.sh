#!/usr/bin/env bash
# Installs cocoon-server as a systemd service: the executable to /usr/local/bin, a dedicated
# `cocoon` user, the unit, and an environment file to edit. Run as root from a checkout or next to
# the files: `sudo scripts/install-systemd.sh [path/to/cocoon-server]`.
set -euo pipefail

self="$(cd "$(dirname "$0")" && pwd)"
here="$(cd "$self/.." && pwd)"
binary="${1:-$here/dist/cocoon-server}"
# From a checkout the files are in deploy/; copied to a host they may sit next to this script.
find_file() { for d in "$here/deploy" "$self"; do [ -f "$d/$1" ] && { echo "$d/$1"; return; }; done; echo "missing $1" >&2; exit 1; }
unit="$(find_file cocoon-server.service)"
env_example="$(find_file cocoon-server.env.example)"

[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
[ -x "$binary" ] || { echo "no executable at $binary; run \`bun run compile\` or pass its path" >&2; exit 1; }

install -m 0755 "$binary" /usr/local/bin/cocoon-server
if ! id cocoon >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/cocoon-server --no-create-home --shell /usr/sbin/nologin cocoon
fi
# GPU device nodes are usually group video/render; membership does no harm on CPU-only hosts.
for g in video render; do getent group "$g" >/dev/null && usermod -aG "$g" cocoon || true; done

install -d -m 0755 /etc/cocoon-server
if [ ! -f /etc/cocoon-server/cocoon-server.env ]; then
  install -m 0640 -g cocoon "$env_example" /etc/cocoon-server/cocoon-server.env
fi
install -m 0644 "$unit" /etc/systemd/system/cocoon-server.service
systemd-analyze verify /etc/systemd/system/cocoon-server.service
systemctl daemon-reload
systemctl enable --now cocoon-server.service
echo "cocoon-server is running: journalctl -u cocoon-server -f; settings in /etc/cocoon-server/cocoon-server.env"
