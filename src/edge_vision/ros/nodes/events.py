"""``ros2 run edge_vision events_node``: the events stage alone, fed from and publishing to topics."""

import sys

from edge_vision.ros.container import main_for


def main(args: list[str] | None = None) -> None:
    sys.exit(main_for(("events",), args))


if __name__ == "__main__":
    main()
