"""
Brokers carry published messages between the processes of a deployment:
L{txpulse.pubsub.broker.memory} (the default, one process) and
L{txpulse.pubsub.broker.redis} (several processes or machines, via Redis pub/sub).
"""
