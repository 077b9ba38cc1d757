"""``python -m contest``: the ``contest`` command (``serve``, ``run``, ``validate``, ...)."""

import sys

from contest.cli import main

sys.exit(main())
