#!/usr/bin/env python3
"""Check that large images flow between two processes on this host without loss.

Publishes a ``sensor_msgs/Image`` (default 1920x1080 bgr8, ~6.2 MB) at a fixed rate with best-effort QoS from this
process to a subscriber in a child process, and reports how many frames per second arrive and their latency.

    source scripts/env.sh                       # venv + LOCALHOST discovery + SHM-only Fast DDS profile
    python scripts/shm_image_check.py           # 10 s at 30 Hz; exit 1 if fewer than --min-fps arrive
    python scripts/shm_image_check.py --no-profile   # the same with Fast DDS' builtin transports, to compare

Discovery is always kept on this host (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST).
"""

from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROFILE = Path(__file__).resolve().parent.parent / "config" / "fastdds_shm.xml"


def _qos(depth: int):  # type: ignore[no-untyped-def]
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)


def run_subscriber(topic: str, seconds: float) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node(f"shm_check_sub_{os.getpid()}")
    received: list[tuple[float, float, int]] = []  # (receive time, latency ms, size)

    def on_image(msg: Image) -> None:
        now = time.time()
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        received.append((now, (now - sent) * 1e3, len(msg.data)))

    node.create_subscription(Image, topic, on_image, _qos(5))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print(json.dumps({"ready": True}), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # until the stream has stopped for 2 s (or the time is up)
        executor.spin_once(timeout_sec=0.05)
        if received and time.time() - received[-1][0] > 2.0:
            break
    print(json.dumps({"received": received}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def run_publisher(args: argparse.Namespace, topic: str) -> dict[str, object]:
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node(f"shm_check_pub_{os.getpid()}")
    pub = node.create_publisher(Image, topic, _qos(5))
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = args.height, args.width, "bgr8", args.width * 3
    # One memcpy into an array('B') that the message adopts as is (assigning a numpy array would go element-wise).
    msg.data = array.array("B", bytes(range(256)) * (args.height * args.width * 3 // 256 + 1))[
        : args.height * args.width * 3
    ]

    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("subscriber was not discovered within 20 s")
        time.sleep(0.05)
    time.sleep(0.5)  # let the subscriber's side of the match settle too

    period = 1.0 / args.rate
    sent = 0
    start = time.monotonic()
    while True:
        target = start + sent * period
        if target - start >= args.seconds:
            break
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
        pub.publish(msg)
        sent += 1
    elapsed = time.monotonic() - start
    node.destroy_node()
    rclpy.shutdown()
    return {"sent": sent, "elapsed_s": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--min-fps", type=float, default=25.0, help="fail below this mean received rate")
    parser.add_argument("--no-profile", action="store_true", help="run without config/fastdds_shm.xml")
    parser.add_argument("--role", choices=["pub", "sub"], default="pub", help=argparse.SUPPRESS)
    parser.add_argument("--topic", default=f"/shm_check_{os.getpid()}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if args.role == "sub":
        run_subscriber(args.topic, args.seconds)
        return 0

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    if args.no_profile:
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    if (os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"), os.environ.get("RMW_IMPLEMENTATION")) != (
        env.get("FASTDDS_DEFAULT_PROFILES_FILE"),
        env["RMW_IMPLEMENTATION"],
    ):  # the DDS settings are read at start-up: re-run this publisher with them
        return subprocess.call([sys.executable, *sys.argv], env=env)

    sub = subprocess.Popen(
        [sys.executable, __file__, "--role", "sub", "--topic", args.topic, "--seconds", str(args.seconds + 25)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert sub.stdout is not None
    first = sub.stdout.readline()
    if not first or not json.loads(first).get("ready"):
        sub.kill()
        raise SystemExit("subscriber process did not start")
    pub_stats = run_publisher(args, args.topic)
    out, _ = sub.communicate(timeout=60)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    received = next((line["received"] for line in lines if "received" in line), [])

    n = len(received)
    duration = float(pub_stats["elapsed_s"])  # type: ignore[arg-type]
    fps = n / duration if duration else 0.0
    per_second: dict[int, int] = {}
    if received:
        t0 = received[0][0]
        for t, _, _ in received:
            per_second[int(t - t0)] = per_second.get(int(t - t0), 0) + 1
    lat = sorted(r[1] for r in received)
    result = {
        "profile": None if args.no_profile else str(PROFILE),
        "image": f"{args.width}x{args.height} bgr8 ({args.width * args.height * 3 / 1e6:.1f} MB)",
        "sent": pub_stats["sent"],
        "received": n,
        "sent_fps": round(int(pub_stats["sent"]) / duration, 1),  # type: ignore[call-overload]
        "received_fps": round(fps, 1),
        "received_per_second": [per_second[k] for k in sorted(per_second)],
        "latency_ms_p50": round(lat[len(lat) // 2], 1) if lat else None,
        "latency_ms_p95": round(lat[int(len(lat) * 0.95)], 1) if lat else None,
    }
    print(json.dumps(result, indent=2))
    return 0 if fps >= args.min_fps else 1


if __name__ == "__main__":
    sys.exit(main())
