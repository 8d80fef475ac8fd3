"""`python -m authbench`: the same as the `authbench` console script."""

from authbench.cli import main

raise SystemExit(main())
