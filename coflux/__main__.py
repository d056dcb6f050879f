"""`python -m coflux`: the command line (cli.py).

Layer: the top, with the command line.
"""

import sys

from .cli import main

sys.exit(main())
