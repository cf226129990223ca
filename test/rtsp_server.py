"""Test helper: a real RTSP server (GStreamer's gst-rtsp-server through Debian's python3-gi) and a tiny HTTP
MJPEG server, bound to 127.0.0.1, serving a pre-encoded clip in a loop at a fixed frame rate.

Run as a separate process, so a test can kill it (SIGKILL), freeze it (SIGSTOP) and start it again:

    /usr/bin/python3 test/rtsp_server.py rtsp  --port 8554 --units clip.units --fps 30   # rtsp://127.0.0.1:8554/cam
    python3          test/rtsp_server.py mjpeg --port 8080 --units jpegs.units --fps 15  # http://127.0.0.1:8080/cam.mjpg

``--units``: the clip as a sequence of (4-byte big-endian length, payload) records: H.264 access units in
Annex-B form (the first one a keyframe carrying SPS/PPS) for rtsp, JPEG images for mjpeg. The clip is made by
the tests with PyAV from data/vtest.avi (``write_units``), so the server needs nothing but the standard library
and, for rtsp, GStreamer; it never encodes (2 cores: the client under test gets the CPU).

The server prints ``READY <port>`` on stdout once it accepts connections. The mjpeg mode uses only the
standard library and runs under any Python 3.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any


def read_units(path: str) -> list[bytes]:
    data = Path(path).read_bytes()
    units, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        units.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    if not units:
        raise SystemExit(f"rtsp_server: {path} holds no units")
    return units


def write_units(path: str | Path, units: Iterable[bytes]) -> Path:
    """Write the clip format this server reads (used by the tests and the capture bench)."""
    out = Path(path)
    with out.open("wb") as handle:
        for unit in units:
            handle.write(struct.pack(">I", len(unit)) + unit)
    return out


class Pacer:
    """Yields the frame index to send next, on a fixed schedule (sleeps in between); never bursts to catch up."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next = time.monotonic()

    def wait(self) -> None:
        self.next += self.period
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            self.next = time.monotonic()


def serve_rtsp(port: int, path: str, units: list[bytes], fps: float) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # One pipeline per client, each starting at the clip's first (key) frame. do-timestamp stamps each buffer
    # with the pipeline clock when it is pushed: the RTP timestamps follow the real send times.
    factory.set_launch(
        "( appsrc name=src is-live=true format=time do-timestamp=true "
        'caps="video/x-h264,stream-format=byte-stream,alignment=au" '
        "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)

    restarts: list[threading.Event] = []  # one per client pipeline: set = go back to the clip's keyframe

    def feed(appsrc: object, restart: threading.Event) -> None:
        pacer = Pacer(fps)
        index = 0
        while True:
            if restart.is_set():
                restart.clear()
                index = 0
            buffer = Gst.Buffer.new_wrapped(units[index % len(units)])
            if appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:  # type: ignore[attr-defined]
                restarts.remove(restart)
                return  # the client went away: its pipeline is flushing
            index += 1
            pacer.wait()

    def on_configure(_factory: object, media: object) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")  # type: ignore[attr-defined]
        restart = threading.Event()
        restarts.append(restart)
        threading.Thread(target=feed, args=(appsrc, restart), daemon=True).start()

    def on_client(_server: object, client: object) -> None:
        # The server prerolls the pipeline before DESCRIBE (the SDP needs the stream's parameter sets), which
        # takes the first keyframe; on PLAY the clip starts again at its keyframe, so a client's first frame
        # decodes at once, as a camera that sends an IDR to a new viewer does.
        client.connect("play-request", lambda *_args: [r.set() for r in list(restarts)])  # type: ignore[attr-defined]

    server.connect("client-connected", on_client)
    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    print(f"READY {port}", flush=True)
    loop.run()


def serve_mjpeg(port: int, path: str, units: list[bytes], fps: float) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    boundary = "evframe"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != path:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={boundary}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            pacer = Pacer(fps)
            index = 0
            try:
                while True:
                    jpeg = units[index % len(units)]
                    head = f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    self.wfile.flush()
                    index += 1
                    pacer.wait()
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", port), Handler) as httpd:
        print(f"READY {port}", flush=True)
        httpd.serve_forever()


def serve_files(port: int, root: str) -> None:
    """Static files (an HLS playlist and its segments) from ``root``."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", port), functools.partial(Handler, directory=root)) as httpd:
        print(f"READY {port}", flush=True)
        httpd.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- used from the tests and the capture bench (the venv's Python, with PyAV) ---------------------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi and GStreamer's RTSP server typelib
DEBIAN_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)


def make_h264_units(
    video: str | Path, out: str | Path, *, width: int = 0, height: int = 0, frames: int = 150, gop: int = 15
) -> Path:
    """H.264 access units (Annex-B, parameter sets on every keyframe, no B-frames: a camera's stream) from
    ``video``, scaled to width x height (0: as it is), for ``serve_rtsp``."""
    import av

    units: list[bytes] = []
    with av.open(str(video)) as source:
        encoder: Any = av.CodecContext.create("libx264", "w")
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            if index == 0:
                encoder.width, encoder.height = width or frame.width, height or frame.height
                encoder.pix_fmt = "yuv420p"
                encoder.time_base = Fraction(1, 30)
                encoder.framerate = Fraction(30)
                encoder.options = {"preset": "veryfast", "g": str(gop), "bf": "0", "x264-params": "repeat-headers=1"}
                # One slice per frame, as most cameras send: PyAV's default slice threading would make x264 cut
                # every frame in slices, and h264parse's parameter sets between them split frames in two.
                encoder.thread_type = "FRAME"
            scaled = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
            scaled.pts = index
            units.extend(bytes(p) for p in encoder.encode(scaled))
        units.extend(bytes(p) for p in encoder.encode(None))
    return write_units(out, units)


def make_hls(video: str | Path, folder: str | Path, *, frames: int = 90, width: int = 384, height: int = 288) -> Path:
    """An HLS playlist (1 s segments of H.264 at 30 fps) from ``video`` in ``folder``; returns the playlist."""
    import av

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    playlist = out / "live.m3u8"
    options = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(video)) as source, av.open(str(playlist), "w", format="hls", options=options) as sink:
        stream: Any = sink.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "g": "30", "bf": "0"}
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts, scaled.time_base = index, Fraction(1, 30)
            sink.mux(stream.encode(scaled))
        sink.mux(stream.encode(None))
    return playlist


def make_jpeg_units(
    video: str | Path, out: str | Path, *, width: int = 384, height: int = 288, frames: int = 30
) -> Path:
    """JPEG images from ``video`` for ``serve_mjpeg``."""
    import av

    units: list[bytes] = []
    with av.open(str(video)) as source:
        encoder: Any = None
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            if encoder is None:
                encoder = av.CodecContext.create("mjpeg", "w")
                encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
                encoder.time_base = Fraction(1, 30)
            scaled = frame.reformat(width=width, height=height, format="yuvj420p")
            scaled.pts = index
            units.extend(bytes(p) for p in encoder.encode(scaled))
    return write_units(out, units)


class ServerProcess:
    """One server in its own process, to kill (SIGKILL), freeze (SIGSTOP), thaw and start again on the same port."""

    def __init__(self, mode: str, units: str | Path, *, fps: float = 30.0, port: int = 0, path: str = "") -> None:
        self.mode = mode
        self.units = str(units)
        self.fps = fps
        self.port = port or free_port()
        self.path = path or ("/cam" if mode == "rtsp" else "/cam.mjpg")
        self.process: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self.starts = 0

    @property
    def url(self) -> str:
        scheme = "rtsp" if self.mode == "rtsp" else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    def file_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Start and wait for READY; raise naming the Debian packages when GStreamer's RTSP server is missing."""
        python = SYSTEM_PYTHON if self.mode == "rtsp" else sys.executable
        if self.mode == "rtsp" and not Path(python).exists():
            raise RuntimeError(
                f"{python} not found: the RTSP test server needs Debian's python3 with {DEBIAN_PACKAGES}"
            )
        command = [python, __file__, self.mode, "--port", str(self.port), "--path", self.path]
        command += ["--units", self.units, "--fps", str(self.fps)]
        # stderr to a file: a pipe nobody reads would block a chatty server once full.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("READY"):
                    self.starts += 1
                    return self
            if self.process.poll() is not None:
                break
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._stderr.seek(0)
        error = self._stderr.read()
        self.kill()
        hint = f" (it needs {DEBIAN_PACKAGES}: scripts/setup.sh installs them)" if self.mode == "rtsp" else ""
        raise RuntimeError(f"{self.mode} test server did not start on port {self.port}{hint}: {error.strip()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)  # a frozen process dies just the same, but be tidy
                self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> ServerProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("rtsp", "mjpeg", "files"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="")
    parser.add_argument("--units", required=True)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    if args.mode == "files":
        serve_files(args.port, args.units)  # --units names the folder here
        return
    units = read_units(args.units)
    if args.mode == "rtsp":
        serve_rtsp(args.port, args.path or "/cam", units, args.fps)
    else:
        serve_mjpeg(args.port, args.path or "/cam.mjpg", units, args.fps)


if __name__ == "__main__":
    sys.exit(main())
