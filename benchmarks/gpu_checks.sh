#!/usr/bin/env bash
# The GPU checks of issue 16 (item 5) in one device call: the GPU tests, model speed, peak extraction speed and
# cameras at 25 fps per GPU. Estimated ~6 minutes on an H200 (not yet run on one); hard budget
# GPU_CHECKS_BUDGET=450 s (each step also under `timeout`; a step that fails or times out is logged, the next runs).
# A step the budget no longer fits is skipped (hrnet's cameras go first: they run last).
#
# On the lent GPU machine, from the repository root (the device tool's `run`):
#     command:   bash benchmarks/gpu_checks.sh
#     carry:     [".whl", ".redis"]
#     timeout_s: 540
# Writes under $OUT (a new temporary folder when unset): gpu_checks.log (every step's output, the environment
# and a closing summary), model_speed.json, peaks_speed.json, cameras_fast.json, cameras_hrnet.json.
#
# That machine (.library/device/KINDS.md, nvidia-h200) is bare and offline: python3 3.12 with torch (CUDA),
# CuPy, onnxruntime, onnx, opencv, scipy, pyyaml, prometheus-client, tqdm, pytest and pytest-timeout, but not
# pydantic, av, redis or filterpy, and no redis-server. Prepare once, HERE, in the root of the checkout that
# the device call sends (the session's own checkout, not a helper's worktree):
#     bash benchmarks/gpu_checks.sh prepare
# which runs
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#         --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#         pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 \
#         typing-extensions==4.16.0 av==18.1.0 redis==8.1.0 filterpy==2.0.0
# and packs this machine's redis-server with the shared libraries it loads (all but libc/libm) into
# .redis/redis-server.tar.xz (a Debian 12 build: needs glibc >= 2.36 there; if it cannot start, the camera steps
# are skipped with its error in the log). `.whl/` is in .gitignore; prepare adds `/.redis/` to .git/info/exclude, so
# neither is committed. Together about 45 MB: the travelling tree (with the ~8 MB repository) must stay
# under 64 MiB; prepare prints the total.
#
# Without CUDA (this CPU machine, or GPU_CHECKS_DRY=1) every GPU step logs "skipped: no CUDA device" after
# checking that its command parses and stops with one clean `error:` line (the GPU tests: collected, skipped).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
WHEELS=(pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
        typing-extensions==4.16.0 av==18.1.0 redis==8.1.0 filterpy==2.0.0)
NEEDED="pydantic, av, redis, filterpy, yaml, cv2, scipy, prometheus_client, onnxruntime, tqdm, pytest"

prepare() {
    set -e
    local exclude
    exclude=$(git rev-parse --git-path info/exclude)
    grep -qx '/.redis/' "$exclude" 2>/dev/null || echo '/.redis/' >>"$exclude"
    git check-ignore -q .whl/x.whl || echo '/.whl/' >>"$exclude"
    rm -rf .whl && mkdir -p .whl
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    local server stage
    server=$(command -v redis-server) || {
        echo "error: no redis-server here to pack (apt install redis-server)"
        exit 2
    }
    stage=$(mktemp -d)
    mkdir -p "$stage/lib" .redis
    cp -L "$server" "$stage/lib/redis-server.bin"
    ldd "$server" | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libpthread|libdl|librt)\.so' |
        while read -r lib; do cp -L "$lib" "$stage/lib/"; done
    tar -C "$stage" -cJf .redis/redis-server.tar.xz lib
    rm -rf "$stage"
    du -sh .whl .redis
    local tree
    tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | du -cb --files0-from=- | tail -1 | cut -f1)
    echo "travels: $tree bytes of tree + $(du -cb .whl .redis | tail -1 | cut -f1) bytes carried (limit 67108864)"
}

if [ "${1:-}" = prepare ]; then
    prepare
    exit
fi

OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_checks.XXXXXX")}
mkdir -p "$OUT"
LOG=$OUT/gpu_checks.log
BUDGET=${GPU_CHECKS_BUDGET:-450}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gpu_checks_work.XXXXXX")
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
SUMMARY=()

log() { echo "[gpu_checks +${SECONDS}s] $*" | tee -a "$LOG"; }
record() { SUMMARY+=("$(printf '%-14s %-44s %4ss' "$1" "$2" "$3")"); }

# step NAME LIMIT_S CMD...: CMD with its output in the log (and $SCRATCH/NAME.out), within the time budget.
step() {
    local name=$1 limit=$2 left t0 rc status
    shift 2
    left=$((BUDGET - SECONDS - 5))
    if ((left < 20)); then
        log "$name: skipped: time budget (${BUDGET}s) spent"
        record "$name" "skipped: time budget spent" 0
        return 1
    fi
    ((limit > left)) && limit=$left
    log "$name: start (limit ${limit}s): $*"
    t0=$SECONDS
    timeout -k 10 "$limit" "$@" </dev/null 2>&1 | tee "$SCRATCH/$name.out" | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMED OUT after ${limit}s" ;;
        *) status="FAILED (exit $rc)" ;;
    esac
    log "$name: $status"
    record "$name" "$status" $((SECONDS - t0))
    return "$rc"
}

# dry NAME CMD...: without CUDA, CMD must stop at once with one `error:` line about CUDA (so its flags and
# config keys parsed), no traceback.
dry() {
    local name=$1 out rc last
    shift
    out=$(timeout 120 "$@" </dev/null 2>&1)
    rc=$?
    last=$(printf '%s\n' "$out" | tail -n 1)
    if ((rc != 0)) && [[ $last == error:*CUDA* ]] && ! grep -q Traceback <<<"$out"; then
        log "$name: skipped: no CUDA device (the command stops cleanly: $last)"
        record "$name" "skipped: no CUDA device" 0
    else
        printf '%s\n' "$out" >>"$LOG"
        log "$name: PROBLEM: without CUDA the command should stop with one error: line on CUDA (exit $rc): $*"
        record "$name" "PROBLEM (see log)" 0
    fi
}

log "repo $ROOT at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); OUT=$OUT; budget ${BUDGET}s"

# ---------------------------------------------------------------- environment and what is missing
if ! "$PY" -c "import $NEEDED" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        step install 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SCRATCH/site" .whl/*.whl
        export PYTHONPATH=$SCRATCH/site:$PYTHONPATH
    fi
    if ! "$PY" -c "import $NEEDED" >>"$LOG" 2>&1; then
        log "PROBLEM: the project's imports fail under $PY (above); carry the wheels made by" \
            "'bash benchmarks/gpu_checks.sh prepare'"
        record install "PROBLEM: imports fail" 0
    fi
else
    log "install: nothing missing ($NEEDED import)"
fi
if ! command -v redis-server >/dev/null && [ -f .redis/redis-server.tar.xz ]; then
    mkdir -p "$SCRATCH/redis/bin"
    tar -C "$SCRATCH/redis" -xJf .redis/redis-server.tar.xz
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$SCRATCH/redis/lib" \
        "$SCRATCH/redis/lib/redis-server.bin" >"$SCRATCH/redis/bin/redis-server"
    chmod +x "$SCRATCH/redis/bin/redis-server"
    export PATH=$SCRATCH/redis/bin:$PATH
fi
REDIS=$(redis-server --version 2>&1 | head -n 1)
[[ $REDIS == "Redis server"* ]] || { log "redis-server: ${REDIS:-not found}"; REDIS=""; }
{
    echo "--- environment"
    if command -v nvidia-smi >/dev/null; then nvidia-smi 2>&1 | head -n 20; else echo "nvidia-smi: not installed"; fi
    "$PY" - <<'EOF' 2>&1
import importlib, platform, sys
print("python", sys.version.split()[0], platform.machine())
for name in ("torch", "cupy", "onnxruntime", "numpy", "cv2", "av", "pydantic", "redis", "pytest"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except Exception as e:  # noqa: BLE001
        print(f"{name}: {type(e).__name__}: {e}")
import torch
print("cuda available:", torch.cuda.is_available(), torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
    echo "redis-server: ${REDIS:-none}"
} | tee -a "$LOG"

CUDA=0
if [ "${GPU_CHECKS_DRY:-0}" != 1 ] &&
    "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    CUDA=1
fi
log "CUDA: $([ $CUDA = 1 ] && echo yes || echo "no: GPU steps are skipped")"

# ---------------------------------------------------------------- (a) the GPU tests
TESTS=(tests/test_detector_runtime.py tests/test_detector_peaks.py)
if [ $CUDA = 1 ]; then
    step gpu_tests 180 "$PY" -m pytest -q -ra -p no:cacheprovider "${TESTS[@]}"
    if grep -qE "SKIPPED.*(CUDA|CuPy)" "$SCRATCH/gpu_tests.out"; then
        log "gpu_tests: PROBLEM: a GPU test was skipped on the GPU machine (see the SKIPPED lines above)"
        record gpu_tests "PROBLEM: GPU test skipped" 0
    fi
else
    timeout 120 "$PY" -m pytest -q -ra -p no:cacheprovider -m gpu "${TESTS[@]}" </dev/null \
        >"$SCRATCH/gpu_tests.out" 2>&1
    if tail -n 1 "$SCRATCH/gpu_tests.out" | grep -qE "^[1-9][0-9]* skipped, [0-9]+ deselected in"; then
        log "gpu_tests: skipped: no CUDA device (the GPU tests collected: $(tail -n 1 "$SCRATCH/gpu_tests.out"))"
        record gpu_tests "skipped: no CUDA device" 0
    else
        cat "$SCRATCH/gpu_tests.out" >>"$LOG"
        log "gpu_tests: PROBLEM: expected the GPU tests collected and skipped, nothing else (above)"
        record gpu_tests "PROBLEM (see log)" 0
    fi
fi

# ---------------------------------------------------------------- (b) model-only speed, both variants
MODEL=("$PY" benchmarks/model_speed.py --device cuda --variants fast hrnet --budget 20 --json "$OUT/model_speed.json")
if [ $CUDA = 1 ]; then step model_speed 150 "${MODEL[@]}"; else dry model_speed "${MODEL[@]}"; fi

# ---------------------------------------------------------------- (c) peak extraction: CuPy vs torch on the GPU
PEAKS=("$PY" benchmarks/peaks_speed.py --device cuda --json "$OUT/peaks_speed.json")
if [ $CUDA = 1 ]; then step peaks_speed 90 "${PEAKS[@]}"; else dry peaks_speed "${PEAKS[@]}"; fi

# ---------------------------------------------------------------- (d) live cameras at 25 fps, alerts to Redis
for variant in fast hrnet; do
    CAMS=("$PY" benchmarks/cameras.py --cameras 1 2 4 8 --seconds 20 --set detector.device=cuda
          --set "detector.weights=$variant" --json "$OUT/cameras_$variant.json")
    if [ $CUDA = 0 ]; then
        dry "cameras_$variant" "${CAMS[@]}"
    elif [ -z "$REDIS" ]; then
        log "cameras_$variant: skipped: no redis-server (pack one: 'bash benchmarks/gpu_checks.sh prepare';" \
            "carry .redis)"
        record "cameras_$variant" "skipped: no redis-server" 0
    else
        step "cameras_$variant" 160 "${CAMS[@]}"
    fi
done

# ---------------------------------------------------------------- summary
{
    echo "--- figures"
    "$PY" - "$OUT" <<'EOF' 2>&1
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
ms = load("model_speed.json")
if ms:
    print(f"model_speed ({ms['machine']['gpu']}): frames/s and 25 fps cameras per GPU, model only, 640x512")
    for r in ms["results"]:
        if r["size"] == "640x512":
            print(f"  {r['variant']:6} {r['runtime']:11} {r['precision']:4} batch {r['batch']:2}: "
                  f"{r['fps']:9.1f} frames/s {r.get('cameras_at_25fps', '-'):>5} cameras")
ps = load("peaks_speed.json")
if ps:
    print("peaks_speed: ms per call (same peaks as torch on the CPU)")
    for r in ps["results"]:
        print(f"  {r['frame']:9} {r['device']:4} {r['path']:5} {r['ms']:8.3f} ms  x{r['speedup_vs_torch']} "
              f"vs torch  same={r['same_peaks']}")
for v in ("fast", "hrnet"):
    cams = load(f"cameras_{v}.json")
    if cams:
        print(f"cameras ({v}, {cams['runs'][0]['runtime']} {cams['runs'][0]['precision']}): "
              f"largest count that fits ({cams['summary']['criteria']}): {cams['summary']['max_cameras']}")
        for r in cams["runs"]:
            print(f"  {r['cameras']} cameras: dropped {r['dropped_pct']} %, publish p99 {r['publish_p99_ms']} ms, "
                  f"alert p99 {r['alert_p99_ms']} ms, cpu {r['cpu']}, fits {r['fits']}")
EOF
    echo "--- steps ($SECONDS s in all; files in $OUT)"
    printf '%s\n' "${SUMMARY[@]}"
} | tee -a "$LOG"
rm -rf "$SCRATCH"
