"""`python -m devstack`: the same as the `verbatim-dev` command."""

import sys

from devstack.cli import main

sys.exit(main())
