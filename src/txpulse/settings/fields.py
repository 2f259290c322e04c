# -*- test-case-name: tests.settings.test_settings -*-
"""
L{ConnectionSettings}, the frozen dataclass, and its field declarations:
each field carries a L{Setting} (its kind, sides, help, command-line name
and client default), and its kind checks the values when the settings are
built (C{__post_init__}). L{declarations} lists them for the generators of
L{txpulse.settings.commandline}.

Standard library and the core only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any, Final, TypeVar

from ..core.assembly import DEFAULT_MAX_INCOMPLETE_SIZE
from ..core.connection import DEFAULT_MAX_MESSAGE_SIZE
from ..core.deflate import SERVER_DEFAULTS, DeflateSettings
from ..core.events import Side
from .parsing import _showSize, parsePositiveSeconds, parseSeconds, parseSize

__all__ = [
    "ConnectionSettings",
    "Declaration",
    "Setting",
    "Side",
    "UNSET",
    "Unset",
    "DEFAULT_MAX_WRITE_BUFFER",
    "declarations",
]

T = TypeVar("T")

#: How much the queue for a peer that has stopped reading may grow once the
#: transport's own buffer is full (8 MiB).
DEFAULT_MAX_WRITE_BUFFER: Final = 8 << 20

#: Both sides of a connection.
BOTH: Final = frozenset((Side.SERVER, Side.CLIENT))
#: The server side only.
SERVER: Final = frozenset((Side.SERVER,))


class Unset(Enum):
    """
    The type of L{UNSET}.
    """

    UNSET = "UNSET"


#: Stands for "not given": a keyword argument left at C{UNSET} keeps the
#: value of the settings it overrides (see L{ConnectionSettings.override}).
UNSET: Final = Unset.UNSET


# The kinds of settings: how their values are checked, read from the
# command line and shown in help.


class _Kind:
    """
    The shape of a setting's values.

    @cvar metavar: what the command-line value stands for.
    @cvar repeatable: the option may be given several times (a list).
    @cvar switch: a C{--name}/C{--no-name} pair of flags.
    """

    metavar = "VALUE"
    repeatable = False
    switch = False

    def check(self, setting: Setting, name: str, value: Any) -> Any:
        """
        C{value} as the setting holds it.

        @raise ValueError: (or L{TypeError}) naming the setting.
        """
        raise NotImplementedError

    def parse(self, setting: Setting, text: str) -> Any:
        """
        The value of one command-line occurrence.

        @raise ValueError: not naming the option.
        """
        raise NotImplementedError

    def show(self, setting: Setting, value: Any) -> str:
        """
        C{value} as a help text shows it.
        """
        return setting.none if value is None else str(value)

    def commandHelp(self, setting: Setting, *notes: str) -> str:
        """
        The setting's help as the command line reads, with C{notes} (such
        as the default) in parentheses.
        """
        return _withNotes(setting.help, notes)


def _withNotes(text: str, notes: Sequence[str]) -> str:
    return f"{text} ({'; '.join(notes)})" if notes else text


def _orNone(setting: Setting) -> str:
    return f" (or None: {setting.none})" if setting.none else ""


class _Seconds(_Kind):
    """
    A positive, finite number of seconds (or C{None}, where the setting
    says what that means; C{0} on the command line).
    """

    metavar = "SECONDS"

    def check(self, setting: Setting, name: str, value: Any) -> float | None:
        if value is None and setting.none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number of seconds{' or None' if setting.none else ''}, not {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite: {value!r}")
        if value < 0:
            raise ValueError(f"{name} must not be negative: {value!r}")
        if value == 0:
            raise ValueError(f"{name} must be positive{_orNone(setting)}: {value!r}")
        return float(value)

    def parse(self, setting: Setting, text: str) -> float | None:
        if setting.none:
            return parseSeconds(text) or None
        return parsePositiveSeconds(text)

    def show(self, setting: Setting, value: Any) -> str:
        return setting.none if value is None else f"{value:g}"

    def commandHelp(self, setting: Setting, *notes: str) -> str:
        # On the command line, 0 stands for None.
        return _withNotes(setting.help, (f"0: {setting.none}", *notes) if setting.none else notes)


class _Size(_Kind):
    """
    A positive number of bytes (or C{None}, where the setting says what
    that means; the command line has no spelling for it).
    """

    metavar = "BYTES"

    def check(self, setting: Setting, name: str, value: Any) -> int | None:
        if value is None and setting.none:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{name} must be a whole number of bytes{' or None' if setting.none else ''}, not {value!r}"
            )
        if value < 0:
            raise ValueError(f"{name} must not be negative: {value!r}")
        if value == 0:
            raise ValueError(f"{name} must be positive{_orNone(setting)}: {value!r}")
        return value

    def parse(self, setting: Setting, text: str) -> int:
        return parseSize(text)

    def show(self, setting: Setting, value: Any) -> str:
        return setting.none if value is None else _showSize(value)


def _sequence(name: str, value: Any, what: str) -> tuple[Any, ...]:
    """
    C{value} as a tuple, a single string being a sequence of one.

    @raise TypeError: for something else than a string or an iterable.
    """
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise TypeError(f"{name} must be a sequence of {what}, not {value!r}")


# RFC 6455 §4.1: subprotocol names are tokens (RFC 7230 §3.2.6 tchar).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Subprotocols(_Kind):
    """
    Subprotocol names, most preferred first (a single string is one name).
    """

    metavar = "NAME"
    repeatable = True

    def check(self, setting: Setting, name: str, value: Any) -> tuple[str, ...]:
        names = _sequence(name, value, "names")
        for item in names:
            if not isinstance(item, str) or not _TOKEN.fullmatch(item):
                raise ValueError(f"{name} must hold tokens (RFC 6455 §4.1), not {item!r}")
        return names

    def parse(self, setting: Setting, text: str) -> str:
        if not _TOKEN.fullmatch(text):
            raise ValueError(f"not a subprotocol name (a token, RFC 6455 §4.1): {text!r}")
        return text

    def show(self, setting: Setting, value: Any) -> str:
        return ", ".join(value) or "none"


class _Origins(_Kind):
    """
    Allowed browser origins (C{https://example.com}, C{"*"},
    C{"same-origin"}; a single string is a list of one), or C{None} for no
    check.
    """

    metavar = "ORIGIN"
    repeatable = True

    def check(self, setting: Setting, name: str, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        origins = _sequence(name, value, "origins or None")
        for item in origins:
            if not isinstance(item, str):
                raise TypeError(f"{name} must hold strings, not {item!r}")
            try:
                self.parse(setting, item)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return tuple(origins)

    def parse(self, setting: Setting, text: str) -> str:
        # An origin is one header value: no spaces, commas or controls.
        if not text or any(c.isspace() or c == "," or not c.isprintable() for c in text):
            raise ValueError(f"not an origin (https://example.com, same-origin or *): {text!r}")
        return text

    def show(self, setting: Setting, value: Any) -> str:
        return setting.none if value is None else ", ".join(value)


class _Compression(_Kind):
    """
    C{False} (off), C{True} (the side's default L{DeflateSettings}), or
    L{DeflateSettings} of one's own; C{--name} / C{--no-name} on the
    command line.
    """

    switch = True

    def check(self, setting: Setting, name: str, value: Any) -> bool | DeflateSettings:
        if not isinstance(value, bool | DeflateSettings):
            raise TypeError(f"{name} must be True, False or a DeflateSettings, not {value!r}")
        return value

    def parse(self, setting: Setting, text: str) -> bool:
        raise NotImplementedError("a switch takes no value")

    def show(self, setting: Setting, value: Any) -> str:
        return "on" if value else "off"


_SECONDS: Final = _Seconds()
_SIZE: Final = _Size()
_SUBPROTOCOLS: Final = _Subprotocols()
_ORIGINS: Final = _Origins()
_COMPRESSION: Final = _Compression()


@dataclass(frozen=True, slots=True)
class Setting:
    """
    The declaration of one setting, kept in its field's metadata.

    @ivar kind: the shape of its values (check, parse, show).
    @ivar sides: the sides that use it.
    @ivar help: one line without a final period, for every C{--help} and
        for the docs.
    @ivar none: what C{None} means, or C{""} when C{None} is not allowed.
    @ivar flag: the command-line name, without dashes (default: the field's
        name in kebab case).
    @ivar clientDefault: the client's default, where it differs from the
        field's (the server's); else L{UNSET}.
    """

    kind: _Kind
    sides: frozenset[Side]
    help: str
    none: str = ""
    flag: str = ""
    clientDefault: object = UNSET


def _setting(
    default: T,
    kind: _Kind,
    sides: frozenset[Side],
    help: str,
    *,
    none: str = "",
    flag: str = "",
    client: object = UNSET,
) -> T:
    """
    A dataclass field carrying its L{Setting} (typed as its default, so
    that the class body reads C{name: type = _setting(default, ...)}).
    """
    spec = Setting(kind, sides, help, none, flag, client)
    made: T = field(default=default, metadata={"setting": spec})
    return made


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """
    How a WebSocket connection behaves: keepalive, timeouts, limits,
    compression, subprotocols and origins, for a server (a
    L{txpulse.server.resource.WebSocketResource}) or a client
    (L{txpulse.client.endpoint.WebSocketClientEndpoint.new}).

    Every field is a keyword argument with the server's default;
    L{defaults} gives either side's (the client does not ping unless told
    to). Each field's one-line help is in L{declarations} (and in
    C{twistd txpulse --help}, C{txpulse-client --help}); the README's
    "Options" section explains each one at length. Values are checked at
    construction: a bad one raises L{ValueError} (or L{TypeError} for a
    value of the wrong type) naming the setting, e.g. C{pingInterval must
    not be negative: -3}. Sequences are stored as tuples, seconds as
    floats, so settings compare and hash by value.
    """

    subprotocols: tuple[str, ...] = _setting(
        (),
        _SUBPROTOCOLS,
        BOTH,
        "Subprotocol to speak (repeatable, most preferred first): a server picks the first one the client offers",
        flag="subprotocol",
    )
    allowedOrigins: tuple[str, ...] | None = _setting(
        None,
        _ORIGINS,
        SERVER,
        "Browser origin allowed to connect (repeatable): https://example.com, same-origin or *; others get 403",
        none="any origin",
        flag="allowed-origin",
    )
    maxMessageSize: int | None = _setting(
        DEFAULT_MAX_MESSAGE_SIZE,
        _SIZE,
        BOTH,
        "Largest message accepted, summed over its fragments; larger closes with 1009",
        none="no limit",
    )
    maxFrameSize: int | None = _setting(
        None,
        _SIZE,
        BOTH,
        "Largest single frame accepted; larger closes with 1009",
        none="the message size limit",
    )
    maxIncompleteSize: int | None = _setting(
        DEFAULT_MAX_INCOMPLETE_SIZE,
        _SIZE,
        SERVER,
        "Memory all incomplete (fragmented or compressed) messages may hold together, inflated bytes included;"
        " a connection that would go past it is closed with 1013",
        none="no bound beyond the message size",
    )
    pingInterval: float | None = _setting(
        20.0,
        _SECONDS,
        BOTH,
        "Ping a peer silent for this many seconds",
        none="no keepalive",
        client=None,
    )
    pingTimeout: float = _setting(
        20.0,
        _SECONDS,
        BOTH,
        "Close (1011) and drop a peer that sends nothing for this many seconds after a ping",
    )
    idleTimeout: float | None = _setting(
        None,
        _SECONDS,
        BOTH,
        "Close (1001) a peer that sent no message for this many seconds",
        none="never",
    )
    closeTimeout: float = _setting(
        10.0,
        _SECONDS,
        BOTH,
        "Seconds allowed for the closing handshake before the connection is aborted",
    )
    handshakeTimeout: float = _setting(
        10.0,
        _SECONDS,
        BOTH,
        "Seconds for the opening handshake: a server's accept hook (then 503), a server's answer to a client",
    )
    maxWriteBuffer: int = _setting(
        DEFAULT_MAX_WRITE_BUFFER,
        _SIZE,
        BOTH,
        "Bytes that may queue up for a peer that stopped reading before it is dropped",
    )
    compression: bool | DeflateSettings = _setting(
        False,
        _COMPRESSION,
        BOTH,
        "Use permessage-deflate compression (RFC 7692): a server accepts offers, a client makes one",
        flag="deflate",
    )

    def __post_init__(self) -> None:
        for declared in declarations():
            value = getattr(self, declared.name)
            checked = declared.setting.kind.check(declared.setting, declared.name, value)
            if checked is not value:
                # Normalized (tuple, float): the dataclass is frozen.
                object.__setattr__(self, declared.name, checked)

    @classmethod
    def defaults(cls, side: Side) -> ConnectionSettings:
        """
        The defaults of C{side}: the field defaults for a server; for a
        client, the same except where a setting declares its own (no
        keepalive pings unless asked for).
        """
        if side is Side.SERVER:
            return cls()
        own: dict[str, Any] = {
            declared.name: declared.setting.clientDefault
            for declared in declarations()
            if declared.setting.clientDefault is not UNSET
        }
        return cls(**own)

    def override(self, **changes: object) -> ConnectionSettings:
        """
        A copy with C{changes}; those left at L{UNSET} keep this object's
        value (so keyword arguments that default to L{UNSET} can be passed
        straight through).

        @raise ValueError: for a bad value (see the class).
        @raise TypeError: for an unknown setting, or a value of a wrong
            type.
        """
        given = {name: value for name, value in changes.items() if value is not UNSET}
        if not given:
            return self
        return replace(self, **given)  # type: ignore[arg-type]

    def checkSide(self, side: Side) -> ConnectionSettings:
        """
        Make sure every setting C{side} does not use is left at its default
        (rather than silently ignored).

        @return: C{self}.
        @raise ValueError: naming the first such setting.
        """
        defaults = ConnectionSettings.defaults(side)
        for declared in declarations():
            if side not in declared.setting.sides and getattr(self, declared.name) != getattr(defaults, declared.name):
                raise ValueError(f"{declared.name} is not a {side.name.lower()} setting")
        return self

    def deflateSettings(self, side: Side) -> DeflateSettings | None:
        """
        The permessage-deflate settings C{side} uses, or C{None} for no
        compression: C{compression=True} means
        L{txpulse.core.deflate.SERVER_DEFAULTS} on a server (12-bit
        windows, 30-43 KiB per compressed connection) and
        C{DeflateSettings()} on a client.
        """
        if isinstance(self.compression, DeflateSettings):
            return self.compression
        if not self.compression:
            return None
        return SERVER_DEFAULTS if side is Side.SERVER else DeflateSettings()


@dataclass(frozen=True, slots=True)
class Declaration:
    """
    One setting: the field's name, its command-line name and its
    L{Setting}.
    """

    name: str
    flag: str
    setting: Setting

    @property
    def help(self) -> str:
        """
        The setting's one-line help.
        """
        return self.setting.help


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _declare() -> tuple[Declaration, ...]:
    declared = []
    for item in fields(ConnectionSettings):
        setting: Setting = item.metadata["setting"]
        declared.append(Declaration(item.name, setting.flag or _kebab(item.name), setting))
    return tuple(declared)


_DECLARATIONS: Final = _declare()
_SIDE_DECLARATIONS: Final = {
    side: tuple(declared for declared in _DECLARATIONS if side in declared.setting.sides) for side in Side
}


def declarations(side: Side | None = None) -> tuple[Declaration, ...]:
    """
    The settings, in declaration order: all of them, or those C{side} uses.
    """
    return _DECLARATIONS if side is None else _SIDE_DECLARATIONS[side]
