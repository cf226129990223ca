"""The systemd notification protocol (``sd_notify(3)``): datagrams of ``KEY=value`` lines to ``$NOTIFY_SOCKET``.

Written here instead of depending on ``systemd-python`` (a C extension that needs libsystemd's headers to build,
and not on PyPI as a wheel) or ``sdnotify`` (last released 2017, no abstract-socket or WATCHDOG_USEC support):
the protocol is one ``sendto`` of a few lines, ~20 lines below.

- ``$NOTIFY_SOCKET``: a path, or ``@name`` for a socket in the abstract namespace (what systemd sets).
- ``$WATCHDOG_USEC`` (with ``$WATCHDOG_PID``, when it names this process): ``WatchdogSec=`` of the unit; the
  process must send ``WATCHDOG=1`` more often than that, so ``ping_interval`` is half of it.

One notifier per process (``notifier()``): READY=1 is sent once, by whichever pipeline first has a frame through;
STOPPING=1 when the process begins to stop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger(__name__)


class SdNotify:
    def __init__(self, address: str = "", watchdog_usec: int = 0) -> None:
        self.address = address
        self.ping_interval = watchdog_usec / 2e6 if watchdog_usec > 0 else 0.0  # seconds; 0 = no watchdog
        self.ready = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls) -> SdNotify:
        address = os.environ.get("NOTIFY_SOCKET", "")
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):  # the watchdog is another process's (a wrapper that forked us)
            usec = ""
        return cls(address, int(usec) if usec.isdigit() else 0)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False when there is no socket or the send failed (logged
        once: a service manager that went away must not flood the log)."""
        if not self.address:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        payload = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(payload, target)
            except OSError as exc:
                if not self._failed:
                    log.warning("sd_notify to %s failed: %s", self.address, exc)
                    self._failed = True
                return False
        return True

    def send_ready(self, status: str) -> None:
        """READY=1, once per process."""
        with self._lock:
            if self.ready:
                return
            self.ready = True
        self.notify("READY=1", f"STATUS={status}")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


_notifier: SdNotify | None = None
_notifier_lock = threading.Lock()


def notifier() -> SdNotify:
    """The process's notifier, made from the environment on first use."""
    global _notifier
    with _notifier_lock:
        if _notifier is None:
            _notifier = SdNotify.from_env()
        return _notifier


def stopping(status: str = "stopping") -> None:
    """STOPPING=1: the process begins to stop (systemd then waits up to TimeoutStopSec, not WatchdogSec)."""
    sd = notifier()
    if sd.enabled:
        sd.notify("STOPPING=1", f"STATUS={status}")
