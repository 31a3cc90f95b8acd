"""The side-by-side benchmark harness (run it with ``python -m bench``; see docs/performance.md)."""
