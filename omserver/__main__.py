"""``python -m omserver …`` is the ``omserver`` command."""

from omserver.cli import main

raise SystemExit(main())
