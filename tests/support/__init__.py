"""
Test support shared by the loopback, process and browser suites (the
in-memory helpers are in C{tests/helpers.py}):

  - L{waits}: bounded waits on the reactor (L{waits.within}, L{waits.until})
    and asyncio clients in worker threads;
  - L{net}: free loopback ports, and whether one accepts connections;
  - L{pki}: a throwaway CA and server certificate;
  - L{servers}: a C{twisted.web} site on 127.0.0.1 whose connections are all
    dropped at teardown, and a recording echo application;
  - L{clients}: txpulse's client endpoint with a recording application;
  - L{peers}: C{websockets} and autobahn servers and clients;
  - L{rawsocket}: blocking sockets writing exact bytes, reading responses
    and frames;
  - L{processes}: servers in subprocesses (C{twistd -n txpulse} above all).
"""
