"""``python -m labelsynth.cli``: the ``labelsynth`` command."""

import sys

from . import main

sys.exit(main())
