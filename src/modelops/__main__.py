"""`python -m modelops` is the `modelops` command."""

import sys

from modelops.cli import main

sys.exit(main())
