"""``python -m incentives``: the same command line as the ``incentives`` console script."""

from .cli import main

raise SystemExit(main())
