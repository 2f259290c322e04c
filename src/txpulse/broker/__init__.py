"""
Moved to L{txpulse.pubsub.broker}: C{txpulse.broker.memory} and
C{txpulse.broker.redis} are shims that warn.
"""
