"""
The sans-IO protocol core: RFC 6455 framing, the connection state machine and
the opening handshake. Standard library only; never imports Twisted (a test
checks it), so it can be tested with bytes alone and reused under any I/O.
"""
