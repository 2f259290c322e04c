"""
The twistd dropin for C{twistd txpulse}. It names the service maker's module
by string so that C{twistd --help} does not import txpulse.
"""

from twisted.application.service import ServiceMaker

txpulse = ServiceMaker(
    "txpulse",
    "txpulse.plugin.tap",
    "WebSocket server: heartbeat and echo demos plus a static site",
    "txpulse",
)
