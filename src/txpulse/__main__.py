"""
C{python -m txpulse gen-key}: see L{txpulse.command}.
"""

import sys

from .command import main

sys.exit(main())
