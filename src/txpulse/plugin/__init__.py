"""
C{twistd txpulse} and the C{txpulse} command: the plugin's options and
service (L{txpulse.plugin.tap}), the connection registry behind its logs,
metrics and graceful shutdown (L{txpulse.plugin.metrics},
L{txpulse.plugin.shutdown}), and C{txpulse gen-key} (L{txpulse.plugin.command}).

Nothing is imported here: the twistd dropin names L{txpulse.plugin.tap} by
string.
"""
