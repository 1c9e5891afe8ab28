"""The speed-benchmark harness (``tools/benchmark.py``): ``harness`` (the timed sections), ``report``
(targets and text tables), ``timing`` (interleaved timing, machine info) and ``ytvis_case`` (a synthetic
YouTube-VIS evaluation case). No runtime module imports this package (tests/test_imports.py)."""
