"""``python -m search``: see ``search.cli``."""

from search.cli import main

raise SystemExit(main())
