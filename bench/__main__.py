"""``python -m bench``: run the benchmark (``--help`` for the options)."""

from bench.cli import main

raise SystemExit(main())
