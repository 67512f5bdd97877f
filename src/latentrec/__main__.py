"""``python -m latentrec``: the same as the ``latentrec`` console script."""

import sys

from .cli import main

sys.exit(main())
