# -*- test-case-name: tests.settings.test_settings -*-
"""
The command line, generated from the declarations of
L{txpulse.settings.fields}:

    - the twistd plugin's options: L{optParameters}, L{optFlags} and, with
      the repeatable ones, the class decorator L{addOptions}; L{fromOptions}
      turns parsed options back into settings;
    - the CLI's flags: L{addArguments} and L{fromArguments} for C{argparse};
    - the adapters that name the option in a parser's error:
      L{usageCoerce} and L{argumentType}.

This module imports no Twisted at import time: C{twisted.python.usage} is
imported by the functions that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .fields import ConnectionSettings, Declaration, Setting, Side, _Kind, declarations

if TYPE_CHECKING:
    import argparse

__all__ = [
    "optParameters",
    "optFlags",
    "addOptions",
    "fromOptions",
    "addArguments",
    "fromArguments",
    "usageCoerce",
    "argumentType",
]

T = TypeVar("T")
OptionsT = TypeVar("OptionsT")


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
    L{fromOptions}) and the class's own C{postOptions} runs. For example::

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
