"""``python -m powerp_async`` runs the ``powerp`` command."""

import sys

from ._launch import main

sys.exit(main())
