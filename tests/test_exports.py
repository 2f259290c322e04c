"""
The public names, checked (like websockets' C{tests/test_exports.py}):
everything C{txpulse.__all__} lists resolves, and every module path used
before the packages-by-layer move still imports and still has its names,
the same objects as at the new path; the documented ones without a warning,
C{txpulse.hub} and the undocumented ones with a L{DeprecationWarning} that
names the new path. (Modules that were created and moved within the same,
unreleased step, such as C{txpulse.ratelimit}, have no old path to keep.)
"""

from __future__ import annotations

import importlib
import warnings

import pytest

import txpulse

#: Old module path -> (where its names live now, does the old path warn?).
MOVED = {
    "txpulse.wire": (["txpulse.wire.protocol"], False),
    "txpulse.tcp": (["txpulse.wire.tcp"], True),
    "txpulse.interfaces": (["txpulse.wire.interfaces"], True),
    "txpulse.resource": (["txpulse.server.resource"], True),
    "txpulse.site": (["txpulse.server.site"], True),
    "txpulse.auth": (["txpulse.server.auth"], True),
    "txpulse.hub": (["txpulse.pubsub.hub", "txpulse.pubsub.protocol"], True),
    "txpulse.broker.memory": (["txpulse.pubsub.broker.memory"], True),
    "txpulse.broker.redis": (["txpulse.pubsub.broker.redis"], True),
    "txpulse.chat": (["txpulse.demos.chat"], True),
    "txpulse.apps": (["txpulse.demos.apps"], True),
    "txpulse.metrics": (["txpulse.plugin.metrics"], False),
    "txpulse.tap": (["txpulse.plugin.tap", "txpulse.plugin.shutdown"], False),
    "txpulse.cli": (["txpulse.client.cli"], False),
    "txpulse.command": (["txpulse.plugin.command"], False),
    "txpulse.exceptions": (["txpulse.core.exceptions", "txpulse.client.endpoint"], False),
}

#: Paths that did not move, with names the README uses.
UNMOVED = {
    "txpulse.client": ["WebSocketClientEndpoint", "ReconnectingWebSocketService", "HandshakeTimeout", "InvalidURL"],
    "txpulse.core.frames": ["CloseCode", "Opcode", "encode_frame"],
    "txpulse.core.connection": ["Connection", "Side"],
    "txpulse.core.deflate": ["DeflateSettings"],
    "txpulse.core.handshake": ["validate_request", "accept_key"],
    "txpulse.core.assembly": ["AssemblyBudget"],
}


def _newHome(name: str, homes: list[str]) -> object:
    for home in homes:
        module = importlib.import_module(home)
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"{name} is in none of {homes}")


def test_all_names_resolve() -> None:
    """
    Every name in C{txpulse.__all__} is an attribute of C{txpulse}, and
    C{dir(txpulse)} lists it (the Twisted-backed ones are loaded lazily).
    """
    for name in txpulse.__all__:
        assert getattr(txpulse, name) is not None, name
        assert name in dir(txpulse), name


def test_unknown_name_raises_attribute_error() -> None:
    """
    A name C{txpulse} never had is an C{AttributeError}, not a lookup in the
    lazy table gone wrong.
    """
    with pytest.raises(AttributeError):
        txpulse.NoSuchName  # noqa: B018


def test_top_level_names_are_the_layered_objects() -> None:
    """
    C{txpulse}'s names are the very objects of the modules that define them.
    """
    from txpulse.client.endpoint import ConnectionRejected, WebSocketClientEndpoint
    from txpulse.core.exceptions import ProtocolError
    from txpulse.pubsub import Hub
    from txpulse.pubsub.hub import Hub as HubFromModule
    from txpulse.server.resource import WebSocketResource
    from txpulse.wire.protocol import WebSocketWire

    assert txpulse.WebSocketResource is WebSocketResource
    assert txpulse.WebSocketClientEndpoint is WebSocketClientEndpoint
    assert txpulse.WebSocketWire is WebSocketWire
    assert txpulse.ConnectionRejected is ConnectionRejected
    assert txpulse.ProtocolError is ProtocolError
    assert issubclass(ConnectionRejected, txpulse.WebSocketError)
    assert Hub is HubFromModule


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_still_work(old: str) -> None:
    """
    Each old module path imports, and every name of its C{__all__} resolves
    to the same object as at the new path; it warns (naming the new path) if
    and only if it is not a documented path or an entry point.
    """
    homes, warns = MOVED[old]
    for home in homes:
        # Imported first, so that warnings of their own imports (Twisted's
        # deprecations) are not counted.
        importlib.import_module(home)
    module = importlib.import_module(old)
    assert module.__doc__ is not None and module.__doc__.strip().startswith("Moved to") or old == "txpulse.wire"
    for name in module.__all__:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(module, name)
        assert value is _newHome(name, homes), f"{old}.{name}"
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning) and "moved" in str(w.message)]
        if warns:
            assert len(deprecations) == 1, f"{old}.{name}"
            message = str(deprecations[0].message)
            assert message.startswith(f"{old}.{name} moved to txpulse."), message
            assert any(f"{home}.{name}" in message for home in homes), message
            assert deprecations[0].filename == __file__, "attributed to the caller"
        else:
            assert deprecations == [], f"{old}.{name}"


def test_hub_moved_with_a_deprecation_warning() -> None:
    """
    The README's C{from txpulse.hub import Hub} keeps working, with a
    L{DeprecationWarning} that points at C{txpulse.pubsub.hub}.
    """
    from txpulse.pubsub import Hub

    with pytest.warns(DeprecationWarning, match=r"txpulse\.hub\.Hub moved to txpulse\.pubsub\.hub\.Hub"):
        from txpulse.hub import Hub as OldHub
    assert OldHub is Hub


def test_old_names_outside_all_still_resolve() -> None:
    """
    Public names the old modules had beyond C{__all__} (used by tests and
    deployments) resolve too: C{txpulse.tap.GracefulShutdown},
    C{txpulse.tap.siteOptions}, C{txpulse.hub.refuse}.
    """
    from txpulse.plugin.shutdown import GracefulShutdown
    from txpulse.plugin.tap import siteOptions
    from txpulse.pubsub.protocol import refuse

    tap = importlib.import_module("txpulse.tap")
    assert tap.GracefulShutdown is GracefulShutdown
    assert tap.siteOptions is siteOptions
    with pytest.warns(DeprecationWarning):
        assert importlib.import_module("txpulse.hub").refuse is refuse


def test_unknown_old_name_raises_attribute_error() -> None:
    """
    A shim knows only the names its old module had.
    """
    with pytest.raises(AttributeError, match="txpulse.hub"):
        importlib.import_module("txpulse.hub").NoSuchName  # noqa: B018


@pytest.mark.parametrize("path", sorted(UNMOVED))
def test_unmoved_paths(path: str) -> None:
    """
    The paths that did not move still have the names the README uses.
    """
    module = importlib.import_module(path)
    for name in UNMOVED[path]:
        assert hasattr(module, name), f"{path}.{name}"
