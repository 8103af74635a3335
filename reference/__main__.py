"""``python -m reference run ...`` (see ``reference.run``)."""

from reference.run import main

raise SystemExit(main())
