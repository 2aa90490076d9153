"""``python -m skcxr.cli``: the ``skcxr`` command."""

import sys

from ._main import main

sys.exit(main())
