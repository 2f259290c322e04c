"""
C{python -m txpulse gen-key}: see L{txpulse.plugin.command}.
"""

import sys

from .plugin.command import main

sys.exit(main())
