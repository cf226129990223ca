# Source me: the project venv plus the ROS settings every command here needs.
# Discovery stays on this host; large images between processes go through shared memory.
_ev_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "${EDGE_VISION_VENV:-$_ev_root/.venv}/bin/activate"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_ev_root/config/fastdds_shm.xml}"
unset _ev_root
