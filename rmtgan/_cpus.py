"""How many CPU cores this process may use (shared by the dense solver's workers and the torch threads)."""

from __future__ import annotations

import math
import os

__all__ = ["available_cores"]


def available_cores() -> int:
    """Number of CPU cores this process may use.

    The CPU affinity mask (``os.sched_getaffinity``) where the platform has one,
    else ``os.cpu_count()``, capped by a cgroup v2 CPU quota (``cpu.max``) when
    one is set.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)
