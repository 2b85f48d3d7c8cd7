#!/usr/bin/env bash
# The one script a session with a lent GPU runs (see ../../.library/device/README.md):
#   run(command="bash bench/gpu_run.sh", carry=[".whl"], timeout_s=600)
#
# 1. If an ignored .whl/ folder holds wheels of fvcore and its needs (iopath, yacs,
#    termcolor, portalocker, tabulate), install them under /tmp/site; otherwise fvcore's
#    columns stay empty. Prepare them here, on a machine with network, with e.g.
#      echo /.whl/ >> .git/info/exclude
#      .venv/bin/python -m pip wheel --no-deps -w .whl fvcore==0.1.5.post20221221 \
#          iopath==0.1.10 yacs termcolor portalocker tabulate
#    (all pure Python, so the py3-none-any wheels built here install there).
# 2. Run the bench on CUDA with the default grid (JSON under the output folder), the
#    CUDA-graph replays (bench/test_graphs.py) included; then, within COMPILE_LIMIT seconds,
#    the torch.compile'd rounds of bench/test_compiled.py matching COMPILE_ONLY (each
#    workload compiles for tens of seconds: the default picks the flash Transformer's).
# 3. Build `charlm report --device cuda` from that JSON (plus the matmul ceiling and short
#    training runs; the FLOP reconciliation, depth and homework check are device-independent
#    and live in the CPU report).
# 4. With TESTS=1 (default), run the test suite there too (CUDA tests included); its log
#    comes back as tests.log. TESTS="tests/test_timing.py tests/test_env.py": those only.
# Knobs for a short lease: ONLY='forward or pair' (a pytest -k selection), BUDGET=0.3 (seconds
# of timed rounds per benchmark), TRAIN=0 (no training runs), CALIBRATE=0, BENCH_LIMIT=120,
# COMPILE_LIMIT=0 (no compiled rounds), COMPILE_ONLY='transformer and train'.
# Output: $OUT when set (the device tool brings back at most 8 files, so the report folder
# travels as one tar.gz beside REPORT.md and the logs), else runs/gpu/ (git-ignored). Commit
# a run as the GPU reference by unpacking it under results/reference/<device>/.
# Budget: about 8 minutes on an H100; the bench is stopped with SIGINT at BENCH_LIMIT seconds,
# which still writes the JSON of every benchmark finished so far.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
BENCH_LIMIT=${BENCH_LIMIT:-330}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu GRID=quick: a smoke test of this script without a GPU
GRID=${GRID:-default}
TESTS=${TESTS:-1}        # 1: the whole suite; a path list (e.g. "tests/test_timing.py"): those
ONLY=${ONLY:-}           # a pytest -k expression: bench only the matching benchmarks
BUDGET=${BUDGET:-1.0}    # seconds of timed rounds per benchmark (adaptive rounds)
TRAIN=${TRAIN:-1}        # 0: leave out the report's short training runs
CALIBRATE=${CALIBRATE:-1}  # 1: charlm calibrate on the device first (machine.json)
COMPILE_LIMIT=${COMPILE_LIMIT:-150}  # seconds for bench/test_compiled.py (0: skip it)
COMPILE_ONLY=${COMPILE_ONLY:-transformer-flash}  # its -k selection
if [ -n "${OUT:-}" ]; then DEST=$(mktemp -d /tmp/charlm_gpu.XXXX); else DEST=runs/gpu; fi
mkdir -p "$DEST"
LOG="$DEST/gpu_run.log"
: >"$LOG"
say() { echo "[gpu_run $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

if compgen -G ".whl/*.whl" >/dev/null; then
    say "installing carried wheels: $(ls .whl | tr '\n' ' ')"
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >>"$LOG" 2>&1; then
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
        say "wheel install failed: fvcore columns will be empty"
    fi
else
    say "no .whl folder: fvcore columns will be empty"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1

"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
try:
    import fvcore  # noqa: F401
    print("fvcore available")
except ImportError:
    print("fvcore absent")
EOF

if [ "$CALIBRATE" = 1 ]; then
    say "calibrate: $DEVICE"
    timeout "${CAL_LIMIT:-120}" "$PY" -m charlm calibrate --device "$DEVICE" --out "$DEST/machine.json" \
        >>"$LOG" 2>&1
    say "calibrate exit $?"
fi

JSON="$DEST/bench/$GRID-$DEVICE.json"
mkdir -p "$DEST/bench"
say "bench: $GRID grid on $DEVICE (limit ${BENCH_LIMIT}s, budget ${BUDGET}s${ONLY:+, only $ONLY})"
K_ARGS=()
[ -n "$ONLY" ] && K_ARGS=(-k "$ONLY")
timeout -s INT -k 30 "$BENCH_LIMIT" "$PY" -m pytest bench/test_models.py bench/test_reference.py \
    bench/test_attention.py bench/test_pairs.py bench/test_graphs.py --benchmark-only \
    --charlm-grid "$GRID" --charlm-device "$DEVICE" --charlm-budget "$BUDGET" "${K_ARGS[@]}" \
    --benchmark-json "$JSON" -q -p no:cacheprovider --benchmark-disable-gc \
    --benchmark-columns=median,iqr,rounds >"$DEST/bench.log" 2>&1
say "bench exit $? ($(tail -n 1 "$DEST/bench.log"))"
JSONS=("$JSON")
if [ "$COMPILE_LIMIT" != 0 ]; then
    CJSON="$DEST/bench/$GRID-$DEVICE-compiled.json"
    say "compiled rounds: -k '$COMPILE_ONLY' (limit ${COMPILE_LIMIT}s)"
    timeout -s INT -k 30 "$COMPILE_LIMIT" "$PY" -m pytest bench/test_compiled.py --benchmark-only \
        --charlm-grid "$GRID" --charlm-device "$DEVICE" --charlm-budget "$BUDGET" \
        -k "$COMPILE_ONLY" --benchmark-json "$CJSON" -q -p no:cacheprovider \
        --benchmark-disable-gc --benchmark-columns=median,iqr,rounds >>"$DEST/bench.log" 2>&1
    say "compiled exit $? ($(tail -n 1 "$DEST/bench.log"))"
    [ -f "$CJSON" ] && JSONS+=("$CJSON")
fi

if [ -f "$JSON" ]; then
    say "report from $JSON"
    QUICK=$([ "$GRID" = quick ] && echo --quick)
    STAGES="environment ceiling bench $([ "$TRAIN" = 1 ] && echo training) figures markdown"
    "$PY" -m charlm report --device "$DEVICE" --out "$DEST/report" --bench-json "${JSONS[@]}" \
        $QUICK --stages $STAGES >>"$LOG" 2>&1
    say "report exit $?"
    cp "$DEST/report/REPORT.md" "$DEST/REPORT.md" 2>/dev/null
    for j in "${JSONS[@]}"; do mv "$j" "$DEST/report/bench-$(basename "$j")"; done
else
    say "no bench JSON was written"
fi
[ -f "$DEST/machine.json" ] && [ -d "$DEST/report" ] && cp "$DEST/machine.json" "$DEST/report/"
if [ "$TESTS" != 0 ]; then
    TEST_PATHS=$([ "$TESTS" = 1 ] && echo tests || echo "$TESTS")
    say "tests: $TEST_PATHS"
    "$PY" -m pytest -q -p no:cacheprovider $TEST_PATHS >"$DEST/tests.log" 2>&1
    say "tests exit $? ($(tail -n 1 "$DEST/tests.log"))"
fi
if [ -n "${OUT:-}" ]; then
    [ -f "$DEST/tests.log" ] && cp "$DEST/tests.log" "$OUT/"
    say "packing results under \$OUT (unpack gpu_results.tar.gz into results/reference/<device>/)"
    tar -czf "$OUT/gpu_results.tar.gz" -C "$DEST" . 2>>"$LOG"
    cp "$LOG" "$DEST/bench.log" "$OUT/" 2>/dev/null
    [ -f "$DEST/REPORT.md" ] && cp "$DEST/REPORT.md" "$OUT/"
    ls -la "$OUT"
fi
