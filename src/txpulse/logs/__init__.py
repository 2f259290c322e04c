"""
What the logs say and how much: peers named one way (L{txpulse.logs.peers}),
repeated events aggregated (L{txpulse.logs.summary}), credentials and long
client strings kept out (L{txpulse.logs.redact}).
"""
