"""The exit statuses of every command-line tool of the project (`detector`, `pipeline`, `tracking.synth`,
the benchmarks): the one place that defines them; the README's table lists the same."""
from __future__ import annotations

import os
import sys
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0           # done; every input read, every alert delivered
    FAILED = 1       # the run failed part-way: an input broke mid-run (corrupt or truncated file, a camera gave
                     #   up), an image could not be read, a stage kept failing, shutdown timed out, second signal
    USAGE = 2        # a user mistake found before any work: bad arguments or config, a missing path or weights,
                     #   no readable input
    UNDELIVERED = 3  # the run finished but some alerts never reached a sink (Redis unreachable); they were
                     #   spilled to the file named in the log
    INTERRUPTED = 130  # Ctrl-C before the run could stop cleanly


def stdout_closed() -> int:
    """Handle a reader that closed our stdout early (`... | head -2`): no traceback, no 'Exception ignored'
    at exit. Returns `OK`: the reader had what it wanted."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return ExitStatus.OK
