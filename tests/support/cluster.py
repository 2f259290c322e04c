"""
A txpulse deployment on loopback, shaped as production runs it: a
C{redis-server}, N C{twistd -n txpulse} nodes sharing it as their broker
(one node per core in production), and nginx in front of them running the
shipped C{deploy/nginx/txpulse.conf} (only its ports rewritten). Every
process is a real subprocess, on free loopback ports, with its output in a
log file under the test's directory; each can be SIGKILLed, SIGTERMed and
started again on the same port, so a chaos test can crash and restart nodes
and Redis (with or without its append-only file) while clients stay
connected through nginx.

    with Cluster(tmp_path, nodes=3) as cluster:
        url = cluster.url("/pubsub")              # ws://127.0.0.1:PORT/pubsub, via nginx
        cluster.nodes[0].kill(); cluster.nodes[0].start()   # crash, then back
        cluster.nodes[1].restart()                # SIGTERM (close 1001), then back
        cluster.redis.restart()                   # data kept only with appendonly=True

Nothing here touches the system's nginx or Redis: nginx runs with
C{-p DIR -c FILE -e LOG} and a generated main configuration, Redis with its
own C{--dir}. C{scripts/install-nginx.sh} and C{scripts/install-redis.sh}
install the executables; without them the fixtures skip the test (and fail
it when C{CI} is set).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

from .executables import executable
from .net import free_port, free_ports
from .processes import ServerProcess, TwistdServer
from .redisserver import RedisServer

__all__ = [
    "NGINX_CONF",
    "Cluster",
    "Nginx",
    "Node",
    "Redis",
    "executable",
    "nginxCommand",
    "renderNginxConf",
    "startAll",
]

#: The shipped nginx configuration (an C{http}-context file).
NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "txpulse.conf"

#: Seconds any process of the cluster has to start, or to stop after SIGTERM.
TIMEOUT = 15.0

#: The cluster's Redis: the suite's one L{RedisServer} (under the name the
#: deployment tests import it by).
Redis = RedisServer


def startAll(servers: Sequence[ServerProcess]) -> None:
    """
    Start C{servers} at once and wait until every one is ready (a node takes
    most of a second to import and listen: three in a row would take three
    times that). Fails the test, with the log of the first that did not
    start, if any did not; those that did are left running for the caller
    to stop.
    """
    if len(servers) <= 1:
        for server in servers:
            server.start()
        return
    with ThreadPoolExecutor(len(servers)) as pool:
        for future in [pool.submit(server.start) for server in servers]:
            future.result()


# -- txpulse nodes -------------------------------------------------------------------------------


class Node(TwistdServer):
    """
    One C{twistd -n txpulse} of the cluster, on a fixed loopback port (the
    one nginx's upstream names), so it comes back where nginx looks for it.

    @ivar index: its place in L{Cluster.nodes}.
    """

    timeout = TIMEOUT

    def __init__(self, directory: Path, index: int, port: int, options: Sequence[str] = ()) -> None:
        self.index = index
        super().__init__(directory / f"node{index}.log", *options, port=port)

    def setOption(self, name: str, value: str) -> None:
        """
        Give option C{name} (e.g. C{"--ping-interval"}) the value C{value}
        from the next L{start} on: replaced where the command line has it,
        else added.
        """
        if name in self.argv:
            self.argv[self.argv.index(name) + 1] = value
        else:
            self.argv += [name, value]

    def terminate(self) -> int | None:
        """
        SIGTERM, as a deploy does: open WebSockets get close 1001, then the
        process exits; its exit status (C{None} if it was not running).
        """
        return self.stop()

    def opened(self, path: str | None = None) -> list[str]:
        """
        The peers of the WebSockets this node opened (over all its runs), as
        its log names them (C{WebSocket open: PEER PATH}): of C{path} only,
        when given.
        """
        peers = []
        for match in re.finditer(r"WebSocket open: (\S+) (\S+)", self.output()):
            if path is None or match.group(2) == path:
                peers.append(match.group(1))
        return peers


# -- nginx -----------------------------------------------------------------------------------------


def renderNginxConf(
    text: str, listenPort: int, upstreamPorts: Sequence[int], overrides: Mapping[str, str] | None = None
) -> str:
    """
    The shipped configuration C{text} for a test: its C{listen} lines
    replaced by one on C{127.0.0.1:listenPort}, the C{server} lines of its
    upstream by one per C{upstreamPorts} (keeping the first one's
    parameters), and each directive named in C{overrides} given that value
    (e.g. C{{"proxy_read_timeout": "2s"}}). Everything else is kept as it
    ships, so the test runs what users install.

    @raise ValueError: when one of those is not in C{text} (the shipped file
        changed shape: the test must follow).
    """
    listen = re.compile(r"^(\s*)listen\s+[^;]*;\n", re.MULTILINE)
    found = listen.findall(text)
    if not found:
        raise ValueError("no listen directive")
    indent = found[0]
    text = listen.sub("", text, count=0)
    text, count = re.subn(
        r"^(\s*)server_name\b", rf"{indent}listen 127.0.0.1:{listenPort};\n\1server_name", text, count=1, flags=re.M
    )
    if not count:
        raise ValueError("no server_name directive (the listen line goes before it)")
    upstream = re.compile(r"^(\s*)server\s+127\.0\.0\.1:\d+([^;]*);\n", re.MULTILINE)
    servers = upstream.findall(text)
    if not servers:
        raise ValueError("no upstream server 127.0.0.1:PORT lines")
    spaces, parameters = servers[0]
    lines = "".join(f"{spaces}server 127.0.0.1:{port}{parameters};\n" for port in upstreamPorts)
    first = upstream.search(text)
    assert first is not None
    text = text[: first.start()] + lines + upstream.sub("", text[first.start() :])
    for name, value in (overrides or {}).items():
        text, count = re.subn(rf"^(\s*){re.escape(name)}\s+[^;]*;", rf"\g<1>{name} {value};", text, flags=re.M)
        if not count:
            raise ValueError(f"no {name} directive to override")
    return text


#: The test's main configuration around the shipped file: everything under
#: the prefix, an access log that names the node (C{$upstream_addr}) and what
#: the client sent (C{X-Forwarded-For}).
_MAIN_CONF = """\
{user}worker_processes 1;
error_log {prefix}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    log_format txpulse_test '$remote_addr "$request" $status upstream=$upstream_addr xff="$http_x_forwarded_for"';
    access_log {prefix}/access.log txpulse_test;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/txpulse.conf;
}}
"""


def nginxCommand(directory: Path) -> list[str]:
    """
    The start of an nginx command line that runs C{directory/txpulse.conf}
    (to be written there by the caller) inside a main configuration written
    here: its prefix, error log, temporary files and access log all in
    C{directory}, nothing read from or written to C{/etc/nginx} or
    C{/var}. Add C{-g "daemon off; pid ...;"} to run it, or C{-t} to check
    it.
    """
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    # Workers run as root only when the master does (a test machine): the
    # prefix is the test's private directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(_MAIN_CONF.format(user=user, prefix=directory))
    nginx = executable("nginx", env="TXPULSE_NGINX")
    return [nginx, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(main)]


class Nginx(ServerProcess):
    """
    nginx in the foreground (C{daemon off}), its prefix, configuration, pid
    file and logs in C{directory}: the shipped C{deploy/nginx/txpulse.conf}
    (through L{renderNginxConf}) in front of C{upstreamPorts}.

    @ivar port: the loopback port it listens on.
    @ivar conf: the rendered C{txpulse.conf} it runs.
    """

    timeout = TIMEOUT

    def __init__(
        self,
        directory: Path,
        upstreamPorts: Sequence[int],
        *,
        port: int | None = None,
        overrides: Mapping[str, str] | None = None,
        source: Path = NGINX_CONF,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = renderNginxConf(source.read_text(), self.port, upstreamPorts, overrides)
        (directory / "txpulse.conf").write_text(self.conf)
        argv = [*nginxCommand(directory), "-g", f"daemon off; pid {directory / 'nginx.pid'};"]
        super().__init__(argv, directory / "nginx.out", [self.port])

    def kill(self) -> None:
        """
        Stop it (SIGTERM: nginx's fast shutdown). A SIGKILL would leave the
        master's worker processes behind, holding the port.
        """
        self.stop()

    def accessLog(self) -> list[str]:
        """
        The access log's lines (a WebSocket's is written when it closes).
        """
        try:
            return (self.directory / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return []

    def errorLog(self) -> str:
        """
        The error log.
        """
        try:
            return (self.directory / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join([*self.output().splitlines(), *self.errorLog().splitlines()][-lines:])


# -- all of it ---------------------------------------------------------------------------------


class Cluster:
    """
    Redis (optional), C{nodes} txpulse nodes and nginx in front, started
    together (L{start}, or entering the context) and stopped in reverse
    order (L{stop}, or leaving it).

    @ivar redis: the L{RedisServer}, or C{None} (then each node has its own
        in-memory broker, and pub/sub does not cross nodes).
    @ivar nodes: the L{Node}s, in nginx's upstream order.
    @ivar nginx: the L{Nginx}.
    """

    def __init__(
        self,
        directory: Path,
        nodes: int = 3,
        *,
        redis: bool = True,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        nodeOptions: Sequence[str] = ("--trusted-proxy", "127.0.0.1"),
        nginxOverrides: Mapping[str, str] | None = None,
    ) -> None:
        """
        @param directory: where every process keeps its files and log.
        @param nodes: how many nodes.
        @param redis: start a Redis and give it to the nodes as C{--broker}.
        @param appendonly: Redis persistence (see L{RedisServer}).
        @param appendfsync: Redis's fsync policy with C{appendonly}.
        @param nodeOptions: options of every node (besides C{--listen},
            C{--broker} and C{--shutdown-timeout 3}); by default nginx's
            address is a trusted proxy.
        @param nginxOverrides: directives of the shipped configuration to
            change (L{renderNginxConf}).
        """
        self.directory = directory
        self.redis = RedisServer(directory / "redis", appendonly=appendonly, appendfsync=appendfsync) if redis else None
        options = ["--shutdown-timeout", "3", *nodeOptions]
        if self.redis is not None:
            options += ["--broker", self.redis.url]
        ports = free_ports(nodes)
        self.nodes = [Node(directory, index, port, options) for index, port in enumerate(ports)]
        self.nginx = Nginx(directory / "nginx", ports, overrides=nginxOverrides)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """
        Redis, then every node at once, then nginx; each ready when this
        returns. On a failure what did start is stopped.
        """
        try:
            if self.redis is not None:
                self.redis.start()
            startAll(self.nodes)
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """
        nginx, the nodes (SIGTERM; SIGKILL after L{TIMEOUT}), Redis: each
        that runs.
        """
        failures: list[BaseException] = []
        for server in [self.nginx, *self.nodes, *([self.redis] if self.redis is not None else [])]:
            try:
                server.stop()
            except BaseException as failure:  # stop the others first
                server.kill()
                failures.append(failure)
        if failures:
            raise failures[0]

    def url(self, path: str = "/", scheme: str = "ws") -> str:
        """
        The URL of C{path} through nginx (C{ws://} by default, or
        C{http://}).
        """
        return f"{scheme}://127.0.0.1:{self.nginx.port}{path}"

    def opened(self, path: str | None = None) -> list[list[str]]:
        """
        Per node (in L{nodes} order), the peers of the WebSockets it opened
        (L{Node.opened}).
        """
        return [node.opened(path) for node in self.nodes]
