# Source me (bash/zsh):  source scripts/env.sh
# Activates the project venv made by scripts/setup.sh and sets what every ROS command of this project needs:
# Fast DDS is the RMW with config/fastdds_shm.xml: large images between processes go through shared memory,
# and DDS (discovery and data) is bound to the loopback interface, so nothing on the network can reach it.
# EDGE_VISION_FASTDDS_PROFILE: use your own copy of that profile instead (e.g. with eth0 in its allowlist).
if [ -n "${BASH_SOURCE[0]:-}" ]; then _ev_here="${BASH_SOURCE[0]}"; else _ev_here="${(%):-%x}"; fi
_ev_root="$(cd "$(dirname "$_ev_here")/.." && pwd)"
_ev_venv="${EDGE_VISION_VENV:-$_ev_root/.venv}"
if [ -f "$_ev_venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$_ev_venv/bin/activate"
else
  echo "[env] $_ev_venv does not exist yet: run scripts/setup.sh first" >&2
fi
# Discovery stays on this host (this project's rule wherever it runs ROS). Note: with LOCALHOST, rmw_fastrtps adds
# a UDP transport of its own whose send sockets bind 0.0.0.0; a deployment that must not open any socket beyond
# lo sets ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT with this profile (its only UDP transport is bound to lo;
# see config/fastdds_shm.xml and README "Hostile input and secrets").
export ROS_AUTOMATIC_DISCOVERY_RANGE="${EDGE_VISION_DISCOVERY_RANGE:-LOCALHOST}"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="${EDGE_VISION_FASTDDS_PROFILE:-$_ev_root/config/fastdds_shm.xml}"
# The venv is also an ament prefix (interface packages, edge_vision's share/ data): let ament_index find it.
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$_ev_venv:"*) ;;
  *) export AMENT_PREFIX_PATH="$_ev_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
unset _ev_here _ev_root _ev_venv
