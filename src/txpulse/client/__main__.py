"""
C{python -m txpulse.client URL}: the C{txpulse-client} command line.
"""

from .cli import main

main()
