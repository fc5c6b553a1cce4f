"""The log child's CPU priority: the core's idle time while the log keeps up, a share of the
core when it falls behind.

On a core shared with the server, the child's batches cost the event loop more than their own
CPU (BENCHMARKS.md, Serving: at nice 4, 0.84-0.97x the unlogged throughput at 64 callers and
a worse p99; run only in the core's idle time, Linux's SCHED_IDLE, ~0.99x and the same p99).
But a core kept busy for long leaves an idle-only child behind: at ~10,000 rows/s of 64-row
requests it filled the queue and dropped rows. So the writer thread (log_writer.py) moves the
child between the two: SCHED_IDLE while fewer than `catch_up_rows` wait, nice 4 (the child
sets that itself, log_process.py) until it has caught up. Answers come first for as long as
the queue can wait; rows are dropped only when even nice 4 cannot keep up.

Leaving SCHED_IDLE takes CAP_SYS_NICE (root outside a container), or an RLIMIT_NICE that
allows nice 4 (16 or more: `docker run --ulimit nice=16`, `LimitNICE=16` under systemd).
Without either the child stays at nice 4 throughout: never stranded in idle time.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from santander.serving.log_process import LOG_PROCESS_NICENESS

CAP_SYS_NICE = 23          # bit in /proc/<pid>/status CapEff (linux/capability.h)
IDLE, CATCHING_UP = "idle", "catching up"


def may_leave_idle_time() -> bool:
    """Whether this process may move a child of its own out of SCHED_IDLE to nice 4 again
    (Linux: CAP_SYS_NICE, or an RLIMIT_NICE the child inherits that allows nice 4)."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    if nice_limit_allows(resource.getrlimit(resource.RLIMIT_NICE)[0], LOG_PROCESS_NICENESS):
        return True
    try:
        return has_cap_sys_nice(Path("/proc/self/status").read_text())
    except OSError:
        return False


def nice_limit_allows(soft_limit: int, niceness: int) -> bool:
    """Whether RLIMIT_NICE `soft_limit` lets a process take `niceness`: a limit r allows nice
    values down to 20 - r (sched(7)); RLIM_INFINITY, any."""
    return soft_limit == resource.RLIM_INFINITY or 20 - soft_limit <= niceness


def has_cap_sys_nice(proc_status: str) -> bool:
    """Whether a /proc/<pid>/status text gives the process CAP_SYS_NICE (effective)."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    return False


class ChildPriority:
    """Keeps the process `pid` in the core's idle time unless `catch_up_rows` or more wait."""

    def __init__(self, pid: int, catch_up_rows: int, adaptive: bool | None = None):
        self.pid = pid
        self.catch_up_rows = catch_up_rows
        self.adaptive = may_leave_idle_time() if adaptive is None else adaptive
        self.state = None           # None: the child's own (nice 4), never changed here

    def keep_up(self, rows_waiting: int) -> str | None:
        """Set the child's policy for `rows_waiting` queued rows; the state it is in."""
        if not self.adaptive:
            return self.state
        wanted = CATCHING_UP if rows_waiting >= self.catch_up_rows else IDLE
        if wanted != self.state:
            policy = os.SCHED_OTHER if wanted == CATCHING_UP else os.SCHED_IDLE
            try:
                os.sched_setscheduler(self.pid, policy, os.sched_param(0))
            except OSError:         # the child is gone (the writer starts another) or refused
                self.adaptive = False
                return self.state
            self.state = wanted
        return self.state
