"""
The demo applications C{twistd txpulse} mounts: heartbeat and echo
(L{txpulse.demos.apps}), chat (L{txpulse.demos.chat}), and the static site
in C{static/} (index.html and the JavaScript client; package data).
"""
