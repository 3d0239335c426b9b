"""Supervised worker threads and the bounded, abortable queue that connects them."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Any, Callable

log = logging.getLogger("pipeline")


class Aborted(Exception):
    """The run is being torn down; the worker should exit."""


class Channel:
    """A bounded FIFO between two stages; `put` blocks when full (back-pressure) but never past an abort."""

    def __init__(self, name: str, maxsize: int, metrics=None) -> None:
        self.name, self._q, self.metrics = name, queue.Queue(maxsize), metrics
        self.aborted = threading.Event()

    def put(self, item: Any) -> None:
        while True:
            if self.aborted.is_set():
                raise Aborted()
            try:
                self._q.put(item, timeout=0.2)
                break
            except queue.Full:
                continue
        self._depth()

    def get(self, timeout: float = 0.2) -> Any:
        """The next item, or None after `timeout` seconds; raises `Aborted` once aborted."""
        if self.aborted.is_set():
            raise Aborted()
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        self._depth()
        return item

    def _depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.name).set(self._q.qsize())

    def abort(self) -> None:
        self.aborted.set()


class InTurn:
    """Several workers taking their inputs from one source hand their outputs to `out` in the order the inputs
    were taken: `take` numbers each input as it is taken; `put` files a number's outputs and sends on whatever
    is next in order, so that no worker waits for a slower one (only for room in `out`)."""

    def __init__(self, out: Channel) -> None:
        self.out = out
        self._taking = threading.Lock()
        self._sending = threading.Lock()
        self._taken = self._next = 0
        self._done: dict[int, list[Any]] = {}

    def take(self, get: Callable[[], Any]) -> tuple[int, Any]:
        """(number, `get()`), or (-1, None) when `get()` gives None (nothing more will come)."""
        with self._taking:
            item = get()
            if item is None:
                return -1, None
            self._taken += 1
            return self._taken - 1, item

    def put(self, number: int, items: list[Any]) -> None:
        """File the outputs of input `number` (possibly none); send every filed output that is next in order."""
        with self._sending:
            self._done[number] = items
            while self._next in self._done:
                for item in self._done[self._next]:
                    self.out.put(item)
                del self._done[self._next]
                self._next += 1


class Worker(threading.Thread):
    """Runs `step()` until it returns False. A step that raises is reported and retried; more than
    `max_restarts` failures within `window_s` stop the run through `on_fatal(message)`."""

    def __init__(self, name: str, step: Callable[[], bool], on_fatal: Callable[[str], None],
                 max_restarts: int = 3, window_s: float = 60.0, metrics=None, on_exit: Callable[[], None] | None = None
                 ) -> None:
        super().__init__(name=f"itd-{name}", daemon=True)
        self.stage, self.step, self.on_fatal, self.on_exit = name, step, on_fatal, on_exit
        self.max_restarts, self.window_s, self.metrics = max_restarts, window_s, metrics
        self.failures: deque[float] = deque()

    def run(self) -> None:
        try:
            while True:
                try:
                    if not self.step():
                        return
                except Aborted:
                    return
                except Exception as e:  # noqa: BLE001 - a stage failure must be reported, never swallowed
                    now = time.monotonic()
                    self.failures.append(now)
                    while self.failures and now - self.failures[0] > self.window_s:
                        self.failures.popleft()
                    if self.metrics is not None:
                        self.metrics.restarts.labels(self.stage).inc()
                    what = f"{type(e).__name__}: {e}"
                    if len(self.failures) > self.max_restarts:
                        log.error("stage %s failed %d times within %.0fs; stopping the run (last error: %s)",
                                  self.stage, len(self.failures), self.window_s, what,
                                  exc_info=log.isEnabledFor(logging.DEBUG))
                        self.on_fatal(f"stage {self.stage} keeps failing: {what}")
                        return
                    log.error("stage %s failed (%s); restarting (%d/%d)", self.stage, what, len(self.failures),
                              self.max_restarts, exc_info=log.isEnabledFor(logging.DEBUG))
                    time.sleep(min(1.0, 0.1 * len(self.failures)))
        finally:
            if self.on_exit is not None:
                try:
                    self.on_exit()
                except Exception as e:  # noqa: BLE001
                    log.error("stage %s failed while closing: %s: %s", self.stage, type(e).__name__, e)
