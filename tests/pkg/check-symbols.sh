#!/usr/bin/env bash
# Usage: check-symbols.sh LIBCHORD_SHARED
# Fails unless the shared library's dynamic symbol table defines only chord_* symbols (and at
# least chord_abi_version): nothing of Rust's standard library or of chord's dependencies may be
# exported, whatever functions the C API has.
set -euo pipefail
lib=${1:?usage: check-symbols.sh LIBCHORD_SHARED}
[ -f "$lib" ] || { echo "check-symbols: $lib does not exist" >&2; exit 1; }
if [ "$(uname -s)" = Darwin ]; then
  # Mach-O names carry a leading underscore.
  names=$(nm -gU "$lib" | awk 'NF >= 3 { sub(/^_/, "", $3); print $3 }')
else
  # Undefined symbols (imports) are left out; "name@VERSION" tags are cut.
  names=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }')
fi
total=$(printf '%s\n' "$names" | grep -c . || true)
others=$(printf '%s\n' "$names" | grep -v '^chord_' | grep . || true)
if [ -n "$others" ]; then
  echo "check-symbols: $lib exports symbols without the chord_ prefix:" >&2
  printf '  %s\n' $others >&2
  exit 1
fi
printf '%s\n' "$names" | grep -qx chord_abi_version \
  || { echo "check-symbols: $lib does not export chord_abi_version" >&2; exit 1; }
echo "check-symbols: $lib exports $total symbols, all chord_*"
