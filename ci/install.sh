#!/bin/sh
# Installs a released speakap-sync binary: downloads SHA256SUMS and the binary for this machine
# from the GitHub release of VERSION, and installs the binary into DIR only when its sha256 is
# the one SHA256SUMS lists for it.
#
#   ci/install.sh VERSION DIR
#
# Exit status: 0 installed; 1 failed (a checksum mismatch, a listed binary that cannot be
# downloaded, a network error): nothing is installed; 2 no release of VERSION, or none with a
# binary for this machine: the caller may build from source.
#
# SPEAKAP_SYNC_TEST_RELEASE_BASE replaces https://github.com/speakap-sync/speakap-sync/releases/download
# for tests against a local fake release server; nothing else should set it.
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 VERSION DIR" >&2
  exit 1
fi
version=${1#v}
dir=$2
base=${SPEAKAP_SYNC_TEST_RELEASE_BASE:-https://github.com/speakap-sync/speakap-sync/releases/download}
url="$base/v$version"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) asset=speakap-sync-x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) asset=speakap-sync-aarch64-unknown-linux-musl ;;
  Darwin-x86_64) asset=speakap-sync-x86_64-apple-darwin ;;
  Darwin-arm64) asset=speakap-sync-aarch64-apple-darwin ;;
  *)
    echo "speakap-sync: no prebuilt binary for $(uname -s) $(uname -m)" >&2
    exit 2
    ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Prints the HTTP status (000 when there was no answer); the body goes to $2.
fetch() {
  curl --silent --show-error --location --retry 3 --connect-timeout 10 --max-time 300 \
    --output "$2" --write-out '%{http_code}' "$1" || true
}

status=$(fetch "$url/SHA256SUMS" "$work/SHA256SUMS")
case "$status" in
  200) ;;
  404)
    echo "speakap-sync: no release v$version (no SHA256SUMS at $url)" >&2
    exit 2
    ;;
  *)
    echo "speakap-sync: cannot download $url/SHA256SUMS (HTTP $status)" >&2
    exit 1
    ;;
esac

expected=$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1 }' "$work/SHA256SUMS")
if [ -z "$expected" ]; then
  echo "speakap-sync: release v$version has no binary for this machine ($asset)" >&2
  exit 2
fi

status=$(fetch "$url/$asset" "$work/$asset")
if [ "$status" != 200 ]; then
  echo "speakap-sync: release v$version lists $asset, but it cannot be downloaded (HTTP $status)" >&2
  exit 1
fi

actual=$(sha256sum "$work/$asset" | awk '{ print $1 }')
if [ "$actual" != "$expected" ]; then
  echo "speakap-sync: checksum mismatch for $asset of v$version: SHA256SUMS says $expected, the download is $actual; nothing installed" >&2
  exit 1
fi

mkdir -p "$dir"
chmod 755 "$work/$asset"
mv "$work/$asset" "$dir/speakap-sync"
echo "speakap-sync v$version installed in $dir ($asset, sha256 $actual)"
