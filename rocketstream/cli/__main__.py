"""``python -m rocketstream.cli``: the same as the ``rocketstream`` command."""

import sys

from .main import main

sys.exit(main())
