"""``python -m powerp_async`` runs the ``powerp`` command."""

import sys

from .cli import main

sys.exit(main())
