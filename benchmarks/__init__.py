"""Side-by-side benchmarks of gradx against a hand-written NumPy floor and peer libraries.

Run ``python -m benchmarks.run --help``. This package imports nothing heavy at import time,
so ``benchmarks.run`` can pin thread counts before NumPy and the peers load.
"""
