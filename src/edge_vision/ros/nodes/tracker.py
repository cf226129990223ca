"""``ros2 run edge_vision tracker_node``: the track stage alone, fed from and publishing to topics."""

import sys

from edge_vision.ros.container import main_for


def main(args: list[str] | None = None) -> None:
    sys.exit(main_for(("track",), args))


if __name__ == "__main__":
    main()
