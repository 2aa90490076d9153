"""``python -m skcxr``: the ``skcxr`` command (:func:`skcxr.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
