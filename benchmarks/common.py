"""What every benchmark shares: the machine's description, interleaved timing, JSON lines and a table.

The machines are shared and noisy, so each benchmark times everything it compares in one run, round-robin
(every case once per round), and reports ratios next to the absolute figures.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detector.data_root import data_root  # noqa: E402

DATA = data_root()  # the shared data sets: $ITD_DATA, default ../shared/data


def machine() -> dict[str, Any]:
    """CPU, core count, GPU and library versions: printed with every result."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
                            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    return info


def interleaved(cases: dict[str, Callable[[], Any]], rounds: int, warmup: int = 2,
                budget_s: float | None = None) -> dict[str, list[float]]:
    """Seconds per call of each case, timed round-robin so that all cases see the same machine load.

    Stops early (after at least 3 rounds) once `budget_s` is spent."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    start = time.perf_counter()
    for r in progress(range(rounds), "rounds"):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        if budget_s is not None and r >= 2 and time.perf_counter() - start > budget_s:
            break
    return times


def progress(items, desc: str, total: int | None = None):
    """`items` with a tqdm bar on stderr while it is a terminal (the JSON lines on stdout stay clean)."""
    from tqdm import tqdm

    return tqdm(items, desc, total=total, leave=False, disable=None)


def median_ms(seconds: list[float]) -> float:
    return 1000 * statistics.median(seconds)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linear interpolation."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def emit(record: dict[str, Any]) -> None:
    """One result as one JSON line on stdout."""
    print(json.dumps(record, sort_keys=False), flush=True)


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A readable fixed-width table: columns are (key, heading)."""
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h), w in zip(columns, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def write_json(path: str | None, payload: Any) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))


def cli(main: Callable[[], Any]) -> None:
    """Run a benchmark's `main`; a user mistake (bad path, config or option) ends in one `error:` line."""
    from detector.errors import DetectorError
    from pipeline.config import ConfigError
    from pipeline.graph import StartupError
    from pipeline.sources import SourceError
    from tracking.sequences import SequenceError

    from detector.exit_status import ExitStatus

    try:
        main()
    except ConfigError as e:
        print("\n".join(f"error: {p}" for p in e.problems), file=sys.stderr)
        raise SystemExit(ExitStatus.USAGE) from None
    except (DetectorError, StartupError, SourceError, SequenceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(ExitStatus.USAGE) from None


# ---------------------------------------------------------------- real services (benchmarks and tests)

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> bool:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def start_redis(workdir: Path) -> tuple["subprocess.Popen", str]:
    """A private redis-server (no persistence) on a free port: (process, URL). Exits with a message if absent."""
    import shutil
    import subprocess

    if shutil.which("redis-server") is None:
        raise SystemExit("error: redis-server is not installed (Debian: apt install redis-server)")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    if not wait_port(port):
        proc.kill()
        raise SystemExit("error: redis-server did not start")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_rtsp(video: Path) -> tuple["subprocess.Popen", str]:
    """GStreamer's RTSP server (`tests/rtsp_server.py` under the system python) serving `video` in real time."""
    import subprocess

    helper = ROOT / "tests" / "rtsp_server.py"
    port = free_port()
    try:
        proc = subprocess.Popen(["/usr/bin/python3", str(helper), str(video), "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise SystemExit("error: /usr/bin/python3 not found (the RTSP server needs Debian's python3-gi)") from None
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"error: RTSP server did not start: {line.strip()} "
                         "(Debian: apt install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
                         "gstreamer1.0-plugins-bad)")
    return proc, f"rtsp://127.0.0.1:{port}/cam1"
