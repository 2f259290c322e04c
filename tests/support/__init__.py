"""
Shared test fixtures, one home for all of them, by topic:

In memory (no reactor, no sockets):

  - L{frames}: client frames built with a fixed mask key, malformed frames
    by hand, close payloads, and a server's output parsed by wsproto;
  - L{core}: a sans-IO server core fed bytes, and how it failed;
  - L{transports}: a L{StringTransport} counting writes and aborts;
  - L{requests}: the one upgrade request builder (in memory and raw sockets);
  - L{apps}: the one recording application (server or client side, echo
    or not, slow or not) and its factory;
  - L{hub}: a fake hub subscriber;
  - L{logs}: log capture (Twisted's L{EventLoggingObserver}, or the text of
    each event in L{logs.LogLines});
  - L{tcppair}: a wire on a real TCP transport driven by hand.

On loopback and in subprocesses:

  - L{waits}: bounded waits on the reactor (L{waits.within}, L{waits.until})
    and asyncio clients in worker threads;
  - L{net}: free loopback ports, and whether one accepts connections;
  - L{pki}: a throwaway CA and server certificate;
  - L{servers}: a C{twisted.web} site on 127.0.0.1 whose connections are all
    dropped at teardown;
  - L{clients}: the C{connect} fixture (txpulse's client endpoint);
  - L{peers}: C{websockets} and autobahn servers and clients;
  - L{rawsocket}: blocking sockets writing exact bytes, reading responses
    and frames;
  - L{keepalive}: many HTTP requests over one keep-alive connection;
  - L{processes}: servers in subprocesses (C{twistd -n txpulse} above all).

Fakes that users will want too live in L{txpulse.testing}.
"""
