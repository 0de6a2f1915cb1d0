#!/usr/bin/env bash
# Install gradx with its test extra and run the suite. Without a CUDA device the
# CPU backends are forced, so the same command works on laptops, CI and GPU hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
# PyTorch (float64, CPU) is the differential oracle of the test suite. Its CPU build is the
# small one; a bare "torch" requirement would pull a CUDA build of several GB.
python3 -c "import torch" 2>/dev/null || \
    python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
if ! python3 - <<'PY' 2>/dev/null
import cupy
assert cupy.cuda.runtime.getDeviceCount() > 0
PY
then
    export GRADX_BACKEND=numpy
    export GRADX_TEST_BACKENDS="${GRADX_TEST_BACKENDS:-numpy,array_api_strict}"
    echo "ci/test.sh: no CUDA device; testing backends ${GRADX_TEST_BACKENDS}"
fi
python3 -m pytest -q -p no:cacheprovider "$@"
