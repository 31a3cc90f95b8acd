"""``python -m acp_adapters``: see :mod:`acp_adapters.cli`."""

import sys

from acp_adapters.cli import main

sys.exit(main())
