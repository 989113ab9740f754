#!/usr/bin/env bash
# Installs the Debian packages that building and testing chord needs, when they are missing:
# cmake (to build llama.cpp, the oracle, and the CMake consumers of `make test-pkg`), valgrind
# (memory checks of the C API), python3-venv (the oracle's Python environment), g++ and pkg-config
# (the C++ and pkg-config consumers of `make test-pkg`, the C++ binding), clang (its module support
# checks the Swift binding's module map), gdb (finds the installed library's debug information),
# golang-1.19 (the Go binding; Debian 12's Go), mono-devel and nunit-console (the C# binding),
# godot3-server (the Godot binding's headless test), mesa-vulkan-drivers and libvulkan1 (Mesa's
# lavapipe, the Vulkan device on which the wgpu kernel tests run without a GPU).
# Needs root or sudo when something is missing.
set -euo pipefail
need=()
for p in cmake valgrind python3-venv gcc g++ make pkg-config clang gdb golang-1.19 mono-devel nunit-console godot3-server \
         mesa-vulkan-drivers libvulkan1; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "chord: installing Debian packages: ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
