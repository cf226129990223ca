"""``edge-vision record | replay | make-bag``: bags of a running pipeline, and bags played into one.

edge-vision make-bag VIDEO BAG [--max-frames N] [--storage mcap|sqlite3] [--format raw|png|jpeg]
edge-vision record BAG [--topics T ...] [--storage mcap|sqlite3] [--duration S]
edge-vision replay BAG [--rate R | --as-fast-as-possible | --step [--step-count N]] [--clock]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edge_vision.bag.io import STORAGES
from edge_vision.bag.video import FORMATS
from edge_vision.ros.record import DEFAULT_TOPICS

EXIT_INTERRUPTED = 130


def add_commands(sub: Any) -> None:
    """Register the bag commands on the ``edge-vision`` sub-parser."""
    make = sub.add_parser("make-bag", help="a bag of image_raw (sensor_msgs/Image) from a video, media-time stamps")
    make.add_argument("video", help="video file")
    make.add_argument("bag", help="bag to create (a folder; must not exist)")
    make.add_argument("--max-frames", type=int, default=0, help="first N frames only (0 = all)")
    make.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    make.add_argument("--topic", default="/image_raw")
    make.add_argument("--frame-id", default="camera", help="header frame_id (the pipeline's camera.camera_id)")
    make.add_argument("--start", type=float, default=0.0, help="stamp of the first frame, in seconds")
    make.add_argument(
        "--format", choices=FORMATS, default="raw", help="raw: Image; png/jpeg: CompressedImage on TOPIC/compressed"
    )
    make.set_defaults(func=cmd_make_bag)

    record = sub.add_parser("record", help="record topics of a running pipeline into a rosbag2 bag")
    record.add_argument("bag", help="bag to create (a folder; must not exist)")
    record.add_argument(
        "--topics", nargs="+", default=list(DEFAULT_TOPICS), help=f"default: {' '.join(DEFAULT_TOPICS)}"
    )
    record.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    record.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0 = until Ctrl-C)")
    record.add_argument("--namespace", default="", help="resolve relative topics under this namespace")
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser("replay", help="play a bag into the pipeline: recorded stamps, no frame lost")
    replay.add_argument("bag")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=1.0, help="recorded rate x R (default 1.0)")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="as fast as the pipeline acknowledges frames")
    pace.add_argument("--step", action="store_true", help="one step per Enter on stdin (q quits)")
    replay.add_argument("--step-count", type=int, default=1, help="images per step (default 1)")
    replay.add_argument("--clock", action="store_true", help="publish the bag time on /clock (use_sim_time)")
    replay.add_argument("--topics", nargs="+", default=[], help="play only these bag topics")
    replay.add_argument(
        "--ack-topic",
        default="auto",
        help="per-frame output acknowledging each image by stamp (auto: tracks when published; '' = none)",
    )
    replay.add_argument("--window", type=int, default=4, help="unacknowledged images at most (default 4)")
    replay.add_argument("--wait-for", type=int, default=1, help="image subscribers to wait for (0 = none)")
    replay.add_argument("--wait-timeout", type=float, default=30.0)
    replay.add_argument("--ack-timeout", type=float, default=10.0, help="seconds without progress = frames lost")
    replay.add_argument(
        "--skip-latched", action="store_true", help="leave transient-local topics (label_info) of the bag out"
    )
    replay.set_defaults(func=cmd_replay)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT / SIGTERM set an event instead of raising mid-write: the bag is finalised, the replay summarised."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _ros_context() -> Iterator[Any]:
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    # No rclpy signal handler: it would shut the context down before the recorder drains or the bag closes.
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


def cmd_make_bag(args: argparse.Namespace) -> int:
    from edge_vision.bag.video import make_bag

    made = make_bag(
        args.video,
        args.bag,
        storage=args.storage,
        topic=args.topic,
        frame_id=args.frame_id,
        max_frames=args.max_frames,
        start_ns=round(args.start * 1e9),
        fmt=args.format,
    )
    span = (made.stamps_ns[-1] - made.stamps_ns[0]) / 1e9
    print(f"{made.path}: {made.frames} frames {made.width}x{made.height} on {made.topic}, {span:.2f} s of media time")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from edge_vision.ros.record import BagRecorder

    with _ros_context() as context, _stop_on_signals() as stop:
        recorder = BagRecorder(
            args.bag, args.topics, storage=args.storage, context=context, namespace=args.namespace, out=sys.stderr
        )
        try:
            print(f"edge-vision record: waiting for {', '.join(recorder.topics)}", file=sys.stderr, flush=True)
            recorder.spin(args.duration, stop)
            recorder.drain()
        finally:
            result = recorder.close()
    counts = ", ".join(f"{topic}: {n}" for topic, n in sorted(result.counts.items())) or "no messages"
    print(f"{result.path}: {counts} ({args.storage}, {result.seconds:.1f} s)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from edge_vision.ros.replay import BagPlayer, ReplayError, ReplayOptions

    options = ReplayOptions(
        rate=0.0 if args.as_fast_as_possible else args.rate,
        step=args.step,
        step_count=args.step_count,
        clock=args.clock,
        topics=args.topics,
        ack_topic=args.ack_topic,
        window=args.window,
        wait_for=args.wait_for,
        wait_timeout=args.wait_timeout,
        ack_timeout=args.ack_timeout,
        skip_latched=args.skip_latched,
    )
    with _ros_context() as context, _stop_on_signals() as stop:
        player = BagPlayer(args.bag, options, context=context)

        def stop_on_signal() -> None:
            stop.wait()
            player.stop()

        watcher = threading.Thread(target=stop_on_signal, daemon=True)
        watcher.start()
        try:
            result = player.run()
        except ReplayError as exc:  # the run failed (no subscriber, frames not acknowledged): exit code 1
            print(f"edge-vision: error: {exc}", file=sys.stderr)
            return 1
        finally:
            player.close()
    topics = ", ".join(f"{t}: {n}" for t, n in sorted(result.published.items())) or "nothing"
    acked = f"; {result.acknowledged}/{result.images} images acknowledged on {', '.join(result.ack_topics)}"
    print(
        f"{args.bag}: played {topics} in {result.seconds:.2f} s ({result.fps:.1f} images/s)"
        + (acked if result.ack_topics else "")
    )
    return EXIT_INTERRUPTED if stop.is_set() else 0
