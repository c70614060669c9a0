"""``python -m rmtgan``: the command line."""

import sys

from rmtgan.cli import main

sys.exit(main())
