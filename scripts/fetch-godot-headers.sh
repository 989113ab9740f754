#!/usr/bin/env bash
# Fetches the Godot 3 GDNative C headers (godot_headers/, matching godot3-server 3.2.3) that the
# crate gdnative-sys 0.11.3 ships, from crates.io's static host (a registry these machines reach;
# no Debian package has them), into $CHORD_CACHE/gdnative-sys-0.11.3, checked by SHA-256.
# Prints the headers' folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/env.sh"
dir="$CHORD_CACHE/gdnative-sys-0.11.3"
sha=0f3b65cf3c2470004fd839135fb98d19d8a893633a21aa3070b4b56d27084d7c
if [ ! -f "$dir/godot_headers/gdnative_api_struct.gen.h" ]; then
  mkdir -p "$CHORD_CACHE"
  tmp=$(mktemp "$CHORD_CACHE/gdnative-sys.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  echo "chord: fetching the GDNative headers (crate gdnative-sys 0.11.3)..." >&2
  curl -fsSL -o "$tmp" https://static.crates.io/crates/gdnative-sys/gdnative-sys-0.11.3.crate
  echo "$sha  $tmp" | sha256sum -c --quiet || { echo "chord: gdnative-sys-0.11.3.crate has another SHA-256" >&2; exit 1; }
  tar xzf "$tmp" -C "$CHORD_CACHE"
fi
echo "$dir/godot_headers"
