"""python -m mailgate"""

import sys

from mailgate.cli import main

sys.exit(main())
