"""
Brokers carry published messages between the processes of a deployment:
L{txpulse.broker.memory} (the default, one process) and
L{txpulse.broker.redis} (several processes or machines, via Redis pub/sub).
"""
