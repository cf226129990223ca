"""Running unattended: systemd's watchdog (``sdnotify``), a stuck-stage watchdog (``watchdog``), resource guards
with one load-shedding place (``guards``), Prometheus metrics and ``/healthz`` (``metrics``), all driven for a
``Pipeline`` by one ``Supervisor`` thread.

Exit codes beyond 0 (ok), 1 (failed), 2 (invalid configuration): 3 the memory ceiling was reached, 4 a stage was
stuck past ``pipeline.watchdog_s`` with ``watchdog_action: exit``. Each is non-zero, so systemd's
``Restart=on-failure`` and docker's ``--restart on-failure`` restart the process.
"""

from edge_vision.core.ops.guards import EXIT_MEMORY
from edge_vision.core.ops.supervisor import Supervisor
from edge_vision.core.ops.watchdog import EXIT_WATCHDOG

__all__ = ["EXIT_MEMORY", "EXIT_WATCHDOG", "Supervisor"]
