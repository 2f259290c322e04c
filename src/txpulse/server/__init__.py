"""
Serving WebSockets with C{twisted.web}: L{txpulse.server.resource.WebSocketResource}
(the handshake, then the takeover), L{txpulse.server.site.WebSocketSite} (the
hardened HTTP channel), and what guards them: the Host allow-list
(L{txpulse.server.hosts}), static files (L{txpulse.server.files}), API keys and
browser tokens (L{txpulse.server.auth}), failed-authentication limits
(L{txpulse.server.ratelimit}).
"""
