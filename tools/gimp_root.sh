#!/usr/bin/env bash
# A Debian 13 (trixie) root with GIMP 3 and its Python, for the GIMP plug-in's end-to-end test on machines whose
# own Debian has no GIMP 3 (Debian 12). Built once, cached outside the repo, reused by every test run:
#   bash tools/gimp_root.sh [ROOT]        (default ${TAUE_GIMP_ROOT:-/var/cache/taue/gimp-root}); prints ROOT
# The root is built in a temporary folder and moved into place when complete, under a lock, so an interrupted
# build never leaves a half-made cache. Needs root, debootstrap (installed here if missing) and Debian's archive.
set -euo pipefail
ROOT=${1:-${TAUE_GIMP_ROOT:-/var/cache/taue/gimp-root}}
MIRROR=${TAUE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if [ -x "$ROOT/usr/bin/gimp-console-3.0" ]; then
  echo "$ROOT"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
fi
BUILD=$(mktemp -d "$ROOT.build.XXXXXX")
cleanup() { umount "$BUILD/proc" 2>/dev/null || true; rm -rf "$BUILD"; }
trap cleanup EXIT
echo "gimp_root: debootstrap trixie into $BUILD" >&2
debootstrap --variant=minbase trixie "$BUILD" "$MIRROR" >&2
mount -t proc proc "$BUILD/proc"
echo "gimp_root: installing GIMP 3 and its Python" >&2
chroot "$BUILD" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends gimp python3-gi gir1.2-gimp-3.0 >&2
chroot "$BUILD" apt-get clean
umount "$BUILD/proc"
rm -rf "$ROOT"
mv "$BUILD" "$ROOT"
trap - EXIT
echo "$ROOT"
