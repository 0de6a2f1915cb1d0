#!/usr/bin/env bash
# Install gradx with its test extra and run the suite. Without a CUDA device the
# CPU backends are forced, so the same command works on laptops, CI and GPU hosts.
# Where the CuPy stand-in sits next to the checkout (../shared/tools/cupy-standin, a CPU
# emulation of CuPy that fails where CuPy fails), the suite also runs on it: as a third
# backend, and once more with it as the default backend (as ci/gpu.sh runs on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
# PyTorch (float64, CPU) is the differential oracle of the test suite. Its CPU build is the
# small one; a bare "torch" requirement would pull a CUDA build of several GB.
python3 -c "import torch" 2>/dev/null || \
    python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
standin="$(dirname "$PWD")/shared/tools/cupy-standin/fakecupy"
if python3 - <<'PY' 2>/dev/null
import cupy
assert not hasattr(cupy, "_fake") and cupy.cuda.runtime.getDeviceCount() > 0
PY
then
    python3 -m pytest -q -p no:cacheprovider "$@"
    exit
fi
export GRADX_BACKEND=numpy
backends="${GRADX_TEST_BACKENDS:-numpy,array_api_strict}"  # a list given by hand is kept
second=0
if [ -d "$standin/cupy" ]; then
    export PYTHONPATH="$standin${PYTHONPATH:+:$PYTHONPATH}"
    if [ -z "${GRADX_TEST_BACKENDS:-}" ]; then backends="$backends,cupy"; second=1; fi
    echo "ci/test.sh: no CUDA device; testing backends $backends (cupy: the stand-in at $standin)"
else
    echo "ci/test.sh: no CUDA device; testing backends $backends" \
         "(CuPy stand-in skipped: $standin is absent)"
fi
status=0
GRADX_TEST_BACKENDS="$backends" python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$second" = 1 ]; then
    echo "ci/test.sh: again with the stand-in as the default backend (GRADX_BACKEND=cupy)"
    GRADX_BACKEND=cupy GRADX_TEST_BACKENDS=cupy python3 -m pytest -q -p no:cacheprovider "$@" \
        || status=$?
fi
exit $status
