#!/usr/bin/env bash
# On a CUDA machine: the suite on the CuPy backend, CPU-vs-GPU comparisons and GPU benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${GRADX_CUDA_EXTRA:-cuda12}"
python3 -m pip install -q --disable-pip-version-check -e ".[test,${extra}]"
python3 -c "import cupy; n = cupy.cuda.runtime.getDeviceCount(); assert n > 0; print('CUDA devices:', n)"
echo "== suite on the CuPy backend"
GRADX_BACKEND=cupy GRADX_TEST_BACKENDS=cupy python3 -m pytest -q -p no:cacheprovider tests
echo "== CPU vs GPU comparison"
GRADX_TEST_BACKENDS=numpy,cupy python3 -m pytest -q -p no:cacheprovider tests -k "compare or backends"
echo "== GPU benchmarks"
python3 -m benchmarks.run --device cupy --repeats 20 || echo "benchmarks: failed (see above)"
