"""`python -m recdb.cli`."""

import sys

from recdb.cli import main

sys.exit(main())
