# -*- test-case-name: tests.test_settings -*-
"""
L{ConnectionSettings}: every setting of a WebSocket connection, declared
once.

Each field of the frozen dataclass is the one place a setting is defined:
its name and type (the annotation), its default (the field's default, and a
client default where the two sides differ), its validation (its kind's
C{check}, run by C{__post_init__}), its one-line help, which sides use it
(server, client or both) and its command-line name. Everything else is
generated from these declarations:

    - L{txpulse.server.resource.WebSocketResource} and
      L{txpulse.client.endpoint.WebSocketClientEndpoint.new} take a
      C{settings=} object; their keyword arguments build one;
    - the twistd plugin's options: L{optParameters}, L{optFlags} and, with
      the repeatable ones, the class decorator L{addOptions}; L{fromOptions}
      turns parsed options back into settings;
    - the CLI's flags: L{addArguments} and L{fromArguments} for C{argparse}.

So adding a setting is one edit here (plus using it where it takes
effect), and the four entry points cannot drift apart.

The command line spells seconds as numbers (C{0} turns off a setting whose
C{None} means "off") and sizes as bytes with an optional C{K}, C{M} or C{G}
suffix (binary: C{64K} is 65536). The parsers (L{parseSeconds},
L{parseSize}, ...) are public, for an entry point's other options.

This module imports no Twisted (C{usage} is imported by the generators
that need it) and nothing beyond the standard library and the core.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .core.assembly import DEFAULT_MAX_INCOMPLETE_SIZE
from .core.connection import DEFAULT_MAX_MESSAGE_SIZE
from .core.deflate import SERVER_DEFAULTS, DeflateSettings
from .core.events import Side

if TYPE_CHECKING:
    import argparse

__all__ = [
    "ConnectionSettings",
    "Declaration",
    "Setting",
    "Side",
    "UNSET",
    "Unset",
    "DEFAULT_MAX_WRITE_BUFFER",
    "declarations",
    "optParameters",
    "optFlags",
    "addOptions",
    "fromOptions",
    "addArguments",
    "fromArguments",
    "parseSeconds",
    "parsePositiveSeconds",
    "parseSize",
    "parseCount",
    "parsePositiveCount",
    "usageCoerce",
    "argumentType",
]

T = TypeVar("T")
OptionsT = TypeVar("OptionsT")

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


# Parsing command-line text. Each parser raises ValueError with a message
# that does not name the option; the adapters (usageCoerce, argumentType)
# add the name.

_SIZE_SUFFIXES = {
    "": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}


def parseSeconds(text: str) -> float:
    """
    A number of seconds, zero or more.

    @raise ValueError: for text that is not a finite number, or a negative
        one.
    """
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a number of seconds: {text!r}")
    if number < 0:
        raise ValueError(f"must not be negative: {text.strip()}")
    return number


def parsePositiveSeconds(text: str) -> float:
    """
    A number of seconds, more than zero.

    @raise ValueError: as L{parseSeconds} does, and for zero.
    """
    number = parseSeconds(text)
    if number == 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return number


def parseSize(text: str) -> int:
    """
    A size in bytes, more than zero, with an optional binary suffix: C{K},
    C{M} or C{G} (also C{KB}, C{KiB}, ...; any case): C{64K} is 65536.

    @raise ValueError: for anything else, or zero.
    """
    upper = text.strip().upper()
    digits = upper.rstrip("KMGIB")
    suffix = upper[len(digits) :]
    if not digits.isdigit() or suffix not in _SIZE_SUFFIXES:
        raise ValueError(f"not a size in bytes (e.g. 65536, 64K, 16M): {text!r}")
    size = int(digits) * _SIZE_SUFFIXES[suffix]
    if size <= 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return size


def parseCount(text: str) -> int:
    """
    A whole number, zero or more.

    @raise ValueError: for anything else.
    """
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if number < 0:
        raise ValueError(f"must not be negative: {text.strip()}")
    return number


def parsePositiveCount(text: str) -> int:
    """
    A whole number, more than zero.

    @raise ValueError: for anything else.
    """
    number = parseCount(text)
    if number == 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return number


def usageCoerce(flag: str, parse: Callable[[str], T]) -> Callable[[str], T]:
    """
    A C{twisted.python.usage} coerce function: C{parse}, with its
    C{ValueError} turned into a C{UsageError} that names the option
    (C{--ping-interval: must not be negative: -3}).

    @param flag: the option's name, without the dashes.
    """

    def coerce(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            from twisted.python import usage

            raise usage.UsageError(f"--{flag}: {error}") from None

    coerce.__name__ = f"coerce_{flag.replace('-', '_')}"
    return coerce


def argumentType(parse: Callable[[str], T]) -> Callable[[str], T]:
    """
    An C{argparse} C{type=}: C{parse}, with its C{ValueError} turned into an
    C{ArgumentTypeError}, which argparse reports with the flag's name
    (C{argument --ping-interval: must not be negative: -3}).
    """

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            import argparse

            raise argparse.ArgumentTypeError(str(error)) from None

    # argparse names the type in some messages.
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _showSize(size: int) -> str:
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


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


def _base(side: Side, defaults: ConnectionSettings | None) -> ConnectionSettings:
    return ConnectionSettings.defaults(side) if defaults is None else defaults


# twisted.python.usage


def optParameters(
    side: Side, defaults: ConnectionSettings | None = None, notes: Mapping[str, str] | None = None
) -> list[list[Any]]:
    """
    The C{optParameters} of a C{twisted.python.usage.Options} for C{side}'s
    settings that take one value (kebab-case names, e.g. C{--ping-interval};
    coerce functions raising C{UsageError} naming the option). The
    repeatable settings and the switches come with L{addOptions} and
    L{optFlags}.

    @param defaults: the values shown and used when an option is not
        given (default: L{ConnectionSettings.defaults} of C{side}).
    @param notes: a few words to add to an option's help, by option name
        (what an entry point does differently: C{{"allowed-origin":
        "default: same-origin on protected mounts"}}).
    """
    base = _base(side, defaults)
    parameters: list[list[Any]] = []
    for declared in declarations(side):
        kind, setting = declared.setting.kind, declared.setting
        if kind.repeatable or kind.switch:
            continue
        parse = _bind(kind, setting)
        parameters.append(
            [
                declared.flag,
                None,
                getattr(base, declared.name),
                kind.commandHelp(setting, *_note(notes, declared)) + ".",
                usageCoerce(declared.flag, parse),
            ]
        )
    return parameters


def _bind(kind: _Kind, setting: Setting) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return kind.parse(setting, text)

    return parse


def optFlags(
    side: Side, defaults: ConnectionSettings | None = None, notes: Mapping[str, str] | None = None
) -> list[list[Any]]:
    """
    The C{optFlags} for C{side}'s switches: C{--deflate} and C{--no-deflate}
    (both given is a C{UsageError}, from L{fromOptions}).

    @param defaults: as for L{optParameters}.
    @param notes: as for L{optParameters}.
    """
    base = _base(side, defaults)
    flags: list[list[Any]] = []
    for declared in declarations(side):
        kind, setting = declared.setting.kind, declared.setting
        if kind.switch:
            default = kind.show(setting, getattr(base, declared.name))
            flags.append(
                [declared.flag, None, kind.commandHelp(setting, *_note(notes, declared), f"default: {default}") + "."]
            )
            flags.append([f"no-{declared.flag}", None, f"The opposite of --{declared.flag}."])
    return flags


def addOptions(
    side: Side, defaults: ConnectionSettings | None = None, notes: Mapping[str, str] | None = None
) -> Callable[[type[OptionsT]], type[OptionsT]]:
    """
    A class decorator for a C{twisted.python.usage.Options} subclass that
    adds every setting of C{side}: L{optParameters}, L{optFlags}, and an
    C{opt_} method per repeatable setting (C{--subprotocol NAME}, collected
    in C{options["subprotocols"]}, a list). After C{postOptions},
    C{options["settings"]} holds the L{ConnectionSettings} (built by
    L{fromOptions}) and the class's own C{postOptions} runs.

        @addOptions(Side.SERVER)
        class Options(usage.Options):
            optParameters = [["heartbeat", None, 1.0, "...", float]]

    @param defaults: as for L{optParameters}.
    @param notes: as for L{optParameters}.
    """

    def decorate(cls: type[OptionsT]) -> type[OptionsT]:
        klass: Any = cls
        klass.optParameters = [*cls.__dict__.get("optParameters", []), *optParameters(side, defaults, notes)]
        klass.optFlags = [*cls.__dict__.get("optFlags", []), *optFlags(side, defaults, notes)]
        repeatable = [declared for declared in declarations(side) if declared.setting.kind.repeatable]
        for declared in repeatable:
            method = _appender(declared, _note(notes, declared))
            setattr(cls, method.__name__, method)
        originalInit = klass.__init__
        originalPost = klass.postOptions

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            originalInit(self, *args, **kwargs)
            for declared in repeatable:
                self.setdefault(declared.name, [])

        def postOptions(self: Any) -> None:
            self["settings"] = fromOptions(self, side, defaults)
            originalPost(self)

        klass.__init__ = __init__
        klass.postOptions = postOptions
        return cls

    return decorate


def _note(notes: Mapping[str, str] | None, declared: Declaration) -> tuple[str, ...]:
    note = None if notes is None else notes.get(declared.flag)
    return () if note is None else (note,)


def _appender(declared: Declaration, notes: tuple[str, ...] = ()) -> Callable[[Any, str], None]:
    """
    The C{opt_} method of a repeatable setting: checks one value, appends
    it to C{options[declared.name]}.
    """
    setting = declared.setting
    coerce = usageCoerce(declared.flag, _bind(setting.kind, setting))

    def handler(self: Any, value: str) -> None:
        self.setdefault(declared.name, []).append(coerce(value))

    handler.__name__ = "opt_" + declared.flag.replace("-", "_")
    handler.__doc__ = setting.kind.commandHelp(setting, *notes) + "."
    return handler


def fromOptions(options: Any, side: Side, defaults: ConnectionSettings | None = None) -> ConnectionSettings:
    """
    The settings that parsed C{twisted.python.usage} options ask for
    (those generated by L{optParameters}, L{optFlags} or L{addOptions}; a
    missing key keeps the default).

    @param options: the parsed options (a mapping).
    @param defaults: as for L{optParameters}.
    @raise twisted.python.usage.UsageError: for a contradiction
        (C{--deflate --no-deflate}) or values that do not go together.
    """
    from twisted.python import usage

    changes: dict[str, object] = {}
    for declared in declarations(side):
        kind = declared.setting.kind
        if kind.repeatable:
            values = options.get(declared.name)
            if values:
                changes[declared.name] = tuple(values)
        elif kind.switch:
            on, off = options.get(declared.flag), options.get(f"no-{declared.flag}")
            if on and off:
                raise usage.UsageError(f"--{declared.flag} and --no-{declared.flag} contradict each other")
            if on or off:
                changes[declared.name] = bool(on)
        elif declared.flag in options:
            changes[declared.name] = options[declared.flag]
    try:
        return _base(side, defaults).override(**changes)
    except (TypeError, ValueError) as error:
        raise usage.UsageError(str(error)) from None


# argparse


def addArguments(
    parser: argparse.ArgumentParser,
    side: Side,
    defaults: ConnectionSettings | None = None,
    notes: Mapping[str, str] | None = None,
) -> argparse._ArgumentGroup:
    """
    Add a flag per setting of C{side} to C{parser}, in a group of their
    own: C{--ping-interval SECONDS}, C{--max-message-size BYTES},
    C{--subprotocol NAME} (repeatable), C{--deflate}/C{--no-deflate}...
    A bad value is reported by argparse with the flag's name
    (C{argument --ping-interval: must not be negative: -3}). A flag not
    given sets nothing: L{fromArguments} keeps the default.

    @param defaults: the values the help shows, and L{fromArguments} should
        be given the same (default: L{ConnectionSettings.defaults} of
        C{side}).
    @param notes: as for L{optParameters}.
    @return: the argument group.
    """
    import argparse

    base = _base(side, defaults)
    group = parser.add_argument_group("connection settings")
    for declared in declarations(side):
        setting, kind = declared.setting, declared.setting.kind
        shown = kind.show(setting, getattr(base, declared.name))
        helpText = kind.commandHelp(setting, *_note(notes, declared), f"default: {shown}").replace("%", "%%")
        if kind.switch:
            group.add_argument(
                f"--{declared.flag}",
                dest=declared.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=helpText,
            )
        else:
            group.add_argument(
                f"--{declared.flag}",
                dest=declared.name,
                action="append" if kind.repeatable else "store",
                type=argumentType(_bind(kind, setting)),
                metavar=kind.metavar,
                default=argparse.SUPPRESS,
                help=helpText,
            )
    return group


def fromArguments(
    namespace: argparse.Namespace, side: Side, defaults: ConnectionSettings | None = None
) -> ConnectionSettings:
    """
    The settings that arguments parsed by a parser prepared with
    L{addArguments} ask for: the flags given, over C{defaults}.

    @raise ValueError: for values that do not go together.
    """
    changes: dict[str, object] = {}
    for declared in declarations(side):
        if hasattr(namespace, declared.name):
            value = getattr(namespace, declared.name)
            changes[declared.name] = tuple(value) if declared.setting.kind.repeatable else value
    return _base(side, defaults).override(**changes)
