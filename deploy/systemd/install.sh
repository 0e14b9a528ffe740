#!/bin/sh
# Installs an rsp node on a systemd host: the `rsp` user and group, the
# directories with their owners and modes, the binary, the units, and (only
# when they are not there yet) /etc/rsp/rsp.toml and /etc/rsp/rsp.env; then
# `systemctl daemon-reload`. It starts nothing: fill in the secrets, put the
# TLS files in place, then `systemctl enable --now rsp.service`.
#
# Safe to run again (an upgrade): the binary and units are replaced, the
# operator's config and environment files are kept, modes are put right.
#
#   deploy/systemd/install.sh [--dry-run] [--binary FILE] [--config FILE] [--env FILE]
#
#   --dry-run      print what would be done, change nothing (no root needed)
#   --binary FILE  the rsp binary [default: target/release/rsp of this repository]
#   --config FILE  becomes /etc/rsp/rsp.toml if that does not exist
#                  [default: examples/3-node/node1.toml beside this script]
#   --env FILE     becomes /etc/rsp/rsp.env if that does not exist
#                  [default: rsp.env beside this script]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

dry_run=0
binary=$repo/target/release/rsp
config=$here/examples/3-node/node1.toml
env_file=$here/rsp.env

usage() {
    sed -n '11,19s/^# \{0,1\}//p' "$0" >&2
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) dry_run=1 ;;
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift ;;
        --config) [ $# -ge 2 ] || usage; config=$2; shift ;;
        --env) [ $# -ge 2 ] || usage; env_file=$2; shift ;;
        -h | --help) usage 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
    shift
done

if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must run as root (or with --dry-run)" >&2
    exit 1
fi

for f in "$binary" "$config" "$env_file" "$here/rsp.service" \
    "$here/rsp-backup.service" "$here/rsp-backup.timer"; do
    if [ ! -f "$f" ]; then
        echo "install.sh: missing $f" >&2
        exit 1
    fi
done

# Runs a command, or only prints it with --dry-run.
run() {
    echo "+ $*"
    if [ "$dry_run" -eq 0 ]; then
        "$@"
    fi
}

if [ "$dry_run" -eq 1 ]; then
    echo "install.sh: dry run, nothing is changed"
fi

# A system user with no login shell and no home of its own.
if getent group rsp >/dev/null 2>&1; then
    echo "= group rsp exists"
else
    run groupadd --system rsp
fi
if getent passwd rsp >/dev/null 2>&1; then
    echo "= user rsp exists"
else
    run useradd --system --gid rsp --home-dir /var/lib/rsp --no-create-home \
        --shell /usr/sbin/nologin --comment "rsp identity platform" rsp
fi

# /etc/rsp: root writes, rsp reads. State and backups: rsp alone.
run install -d -m 0750 -o root -g rsp /etc/rsp
run install -d -m 0750 -o root -g rsp /etc/rsp/tls
run install -d -m 0700 -o rsp -g rsp /var/lib/rsp
run install -d -m 0700 -o rsp -g rsp /var/backups/rsp

run install -m 0755 -o root -g root "$binary" /usr/local/bin/rsp
for unit in rsp.service rsp-backup.service rsp-backup.timer; do
    run install -m 0644 -o root -g root "$here/$unit" "/etc/systemd/system/$unit"
done

# place SRC DEST MODE GROUP: install SRC as DEST (owner root), or keep an
# existing DEST's contents and only set its mode and owner.
place() {
    if [ -e "$2" ]; then
        echo "= keeping $2"
        run chown "root:$4" "$2"
        run chmod "$3" "$2"
    else
        run install -m "$3" -o root -g "$4" "$1" "$2"
    fi
}
place "$config" /etc/rsp/rsp.toml 0640 rsp
# Secrets: read by systemd as root before it drops to `rsp`.
place "$env_file" /etc/rsp/rsp.env 0600 root

run systemctl daemon-reload

cat <<'EOF'
Next:
  1. Replace each CHANGE-ME in /etc/rsp/rsp.env (the same values on every node).
  2. Edit /etc/rsp/rsp.toml (node_id, zone, addresses, join).
  3. Put ca.crt, node.crt and node.key in /etc/rsp/tls
     (chown root:rsp, chmod 0640; see docs/operations.md for making them).
  4. systemctl enable --now rsp.service
  5. systemctl enable --now rsp-backup.timer
EOF
