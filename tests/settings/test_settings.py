# -*- test-case-name: tests.settings.test_settings -*-
"""
Tests for L{txpulse.settings}: the one declaration of every connection
setting, its validation, and the twistd and argparse options generated from
it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import pytest
from twisted.python import usage

from txpulse.core.assembly import DEFAULT_MAX_INCOMPLETE_SIZE
from txpulse.core.connection import DEFAULT_MAX_MESSAGE_SIZE
from txpulse.core.deflate import SERVER_DEFAULTS, DeflateSettings
from txpulse.settings import (
    UNSET,
    ConnectionSettings,
    Side,
    addArguments,
    addOptions,
    declarations,
    fromArguments,
    fromOptions,
    optFlags,
    optParameters,
    parseCount,
    parsePositiveCount,
    parsePositiveSeconds,
    parseSeconds,
    parseSize,
)


@addOptions(Side.SERVER)
class ServerOptions(usage.Options):
    """
    A twistd-style option set: one option of its own plus every server
    setting.
    """

    optParameters = [["heartbeat", None, 1.0, "Seconds between heartbeats.", float]]

    def postOptions(self) -> None:
        self["ownPostOptionsRan"] = True


def parseServer(*argv: str) -> ServerOptions:
    """
    Parse C{argv} with L{ServerOptions}.
    """
    options = ServerOptions()
    options.parseOptions(list(argv))
    return options


def clientParser() -> argparse.ArgumentParser:
    """
    An argparse parser with one argument of its own plus every client
    setting.
    """
    parser = argparse.ArgumentParser(prog="client")
    parser.add_argument("url")
    addArguments(parser, Side.CLIENT)
    return parser


def test_server_defaults_are_the_documented_ones() -> None:
    """
    A server's defaults are the ones C{WebSocketResource} has always had:
    ping every 20 s of silence, 20 s to answer, no idle timeout, 10 s to
    close and to accept, 1 MiB messages, frames up to the message size,
    64 MiB of incomplete messages, 8 MiB of write buffer, no compression,
    no subprotocols, no origin check.
    """
    settings = ConnectionSettings()
    assert settings == ConnectionSettings.defaults(Side.SERVER)
    assert settings.pingInterval == 20.0
    assert settings.pingTimeout == 20.0
    assert settings.idleTimeout is None
    assert settings.closeTimeout == 10.0
    assert settings.handshakeTimeout == 10.0
    assert settings.maxMessageSize == DEFAULT_MAX_MESSAGE_SIZE == 1 << 20
    assert settings.maxFrameSize is None
    assert settings.maxIncompleteSize == DEFAULT_MAX_INCOMPLETE_SIZE == 64 << 20
    assert settings.maxWriteBuffer == 8 << 20
    assert settings.compression is False
    assert settings.subprotocols == ()
    assert settings.allowedOrigins is None


def test_client_defaults_differ_only_in_keepalive() -> None:
    """
    A client does not ping unless told to (as C{WebSocketClientEndpoint.new}
    never did); every other default is the server's.
    """
    client = ConnectionSettings.defaults(Side.CLIENT)
    assert client.pingInterval is None
    assert client.override(pingInterval=20.0) == ConnectionSettings()


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"pingInterval": -3}, ValueError, "pingInterval must not be negative: -3"),
        ({"pingInterval": 0}, ValueError, "pingInterval must be positive (or None: no keepalive): 0"),
        ({"pingTimeout": 0}, ValueError, "pingTimeout must be positive: 0"),
        ({"pingTimeout": None}, TypeError, "pingTimeout must be a number of seconds, not None"),
        ({"idleTimeout": float("inf")}, ValueError, "idleTimeout must be finite: inf"),
        ({"closeTimeout": -1.5}, ValueError, "closeTimeout must not be negative: -1.5"),
        ({"handshakeTimeout": "10"}, TypeError, "handshakeTimeout must be a number of seconds, not '10'"),
        ({"maxMessageSize": 0}, ValueError, "maxMessageSize must be positive (or None: no limit): 0"),
        ({"maxFrameSize": 1.5}, TypeError, "maxFrameSize must be a whole number of bytes or None, not 1.5"),
        ({"maxWriteBuffer": True}, TypeError, "maxWriteBuffer must be a whole number of bytes, not True"),
        ({"maxIncompleteSize": -1}, ValueError, "maxIncompleteSize must not be negative: -1"),
        ({"subprotocols": ["chat", "a b"]}, ValueError, "subprotocols must hold tokens (RFC 6455 §4.1), not 'a b'"),
        ({"subprotocols": 3}, TypeError, "subprotocols must be a sequence of names, not 3"),
        ({"allowedOrigins": ["https://a.example", ""]}, ValueError, "allowedOrigins: not an origin"),
        ({"compression": "yes"}, TypeError, "compression must be True, False or a DeflateSettings, not 'yes'"),
    ],
)
def test_bad_values_raise_naming_the_setting(changes: dict[str, Any], error: type[Exception], message: str) -> None:
    """
    A bad value raises at construction, with a message that names the
    setting and shows the value.
    """
    with pytest.raises(error) as raised:
        ConnectionSettings(**changes)
    assert str(raised.value).startswith(message)


def test_values_are_normalized() -> None:
    """
    Sequences become tuples (a single string is a list of one), whole
    seconds become floats: settings compare and hash by value.
    """
    settings = ConnectionSettings(subprotocols=["v2", "v1"], allowedOrigins="same-origin", pingInterval=5)
    assert settings.subprotocols == ("v2", "v1")
    assert settings.allowedOrigins == ("same-origin",)
    assert isinstance(settings.pingInterval, float)
    assert settings == ConnectionSettings(subprotocols=("v2", "v1"), allowedOrigins=["same-origin"], pingInterval=5.0)
    assert hash(settings) == hash(
        ConnectionSettings(subprotocols=("v2", "v1"), allowedOrigins=("same-origin",), pingInterval=5.0)
    )


def test_settings_are_frozen() -> None:
    """
    Settings cannot be changed in place (they are shared by every
    connection of a resource); L{ConnectionSettings.override} makes a copy.
    """
    settings = ConnectionSettings()
    with pytest.raises(AttributeError):
        settings.pingInterval = 1.0  # type: ignore[misc]
    assert settings.override(pingInterval=1.0).pingInterval == 1.0
    assert settings.pingInterval == 20.0


def test_override_keeps_unset_values() -> None:
    """
    L{ConnectionSettings.override} ignores arguments left at L{UNSET} (so a
    function's keyword arguments can be passed straight through), validates
    the others, and refuses unknown names.
    """
    settings = ConnectionSettings(closeTimeout=3.0)
    assert settings.override(closeTimeout=UNSET, pingInterval=UNSET) is settings
    assert settings.override(closeTimeout=UNSET, pingInterval=None) == ConnectionSettings(
        closeTimeout=3.0, pingInterval=None
    )
    with pytest.raises(ValueError, match="pingTimeout must be positive"):
        settings.override(pingTimeout=0)
    with pytest.raises(TypeError):
        settings.override(pingIntervall=1.0)


def test_check_side_refuses_settings_the_side_does_not_use() -> None:
    """
    A client given a server-only setting (an origin allow-list, an
    incomplete-message budget) is told so rather than silently ignoring it;
    the defaults pass.
    """
    assert ConnectionSettings.defaults(Side.CLIENT).checkSide(Side.CLIENT) is not None
    assert ConnectionSettings(allowedOrigins=["*"]).checkSide(Side.SERVER) is not None
    with pytest.raises(ValueError, match="allowedOrigins is not a client setting"):
        ConnectionSettings(allowedOrigins=["*"]).checkSide(Side.CLIENT)
    with pytest.raises(ValueError, match="maxIncompleteSize is not a client setting"):
        ConnectionSettings(maxIncompleteSize=1024).checkSide(Side.CLIENT)


def test_compression_means_each_side_s_defaults() -> None:
    """
    C{compression=True} is L{SERVER_DEFAULTS} on a server and
    C{DeflateSettings()} on a client; C{False} is none; one's own
    L{DeflateSettings} are used as they are.
    """
    assert ConnectionSettings(compression=True).deflateSettings(Side.SERVER) == SERVER_DEFAULTS
    assert ConnectionSettings(compression=True).deflateSettings(Side.CLIENT) == DeflateSettings()
    assert ConnectionSettings().deflateSettings(Side.SERVER) is None
    own = DeflateSettings(level=1)
    assert ConnectionSettings(compression=own).deflateSettings(Side.CLIENT) is own


def test_every_setting_is_declared_with_help_sides_and_flag() -> None:
    """
    Every field is a declared setting: a one-line help without a final
    period, at least one side, and a unique kebab-case command-line name;
    the server-only ones are the origin allow-list and the budget for
    incomplete messages.
    """
    declared = declarations()
    assert [d.name for d in declared] == list(ConnectionSettings.__dataclass_fields__)
    for d in declared:
        assert d.help and "\n" not in d.help and not d.help.endswith("."), d.name
        assert d.setting.sides, d.name
        assert d.flag == d.flag.lower() and " " not in d.flag and "_" not in d.flag, d.name
    assert len({d.flag for d in declared}) == len(declared)
    serverOnly = {d.name for d in declared} - {d.name for d in declarations(Side.CLIENT)}
    assert serverOnly == {"allowedOrigins", "maxIncompleteSize"}
    assert {d.name for d in declarations(Side.SERVER)} == {d.name for d in declared}


def test_settings_import_no_twisted() -> None:
    """
    Importing L{txpulse.settings} in a fresh interpreter loads no Twisted
    module: the settings are cheap to import, and usable without it.
    """
    code = "import sys, txpulse.settings; print(sorted(m for m in sys.modules if m.split('.')[0] == 'twisted'))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (parseSize, "65536", 65536),
        (parseSize, "64K", 64 << 10),
        (parseSize, "16m", 16 << 20),
        (parseSize, "1GiB", 1 << 30),
        (parseSize, " 2KB ", 2 << 10),
        (parseSeconds, "0", 0.0),
        (parseSeconds, "2.5", 2.5),
        (parsePositiveSeconds, "0.1", 0.1),
        (parseCount, "0", 0),
        (parsePositiveCount, "7", 7),
    ],
)
def test_command_line_values_parse(parse: Any, text: str, value: object) -> None:
    """
    Sizes take an optional binary suffix (any case, C{K}, C{KB} or
    C{KiB}); seconds are decimal numbers; counts are whole numbers.
    """
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parseSize, "12Q", "not a size in bytes (e.g. 65536, 64K, 16M): '12Q'"),
        (parseSize, "0", "must be positive: 0"),
        (parseSize, "-1K", "not a size in bytes"),
        (parseSeconds, "fast", "not a number of seconds: 'fast'"),
        (parseSeconds, "nan", "not a number of seconds: 'nan'"),
        (parseSeconds, "-3", "must not be negative: -3"),
        (parsePositiveSeconds, "0", "must be positive: 0"),
        (parseCount, "1.5", "not a whole number: '1.5'"),
        (parsePositiveCount, "0", "must be positive: 0"),
    ],
)
def test_bad_command_line_values_are_value_errors(parse: Any, text: str, message: str) -> None:
    """
    The parsers raise L{ValueError} with a one-line message that shows the
    text (the adapters add the option's name).
    """
    with pytest.raises(ValueError) as raised:
        parse(text)
    assert str(raised.value).startswith(message)


def test_usage_options_built_from_optParameters_round_trip() -> None:
    """
    A C{usage.Options} whose C{optParameters} and C{optFlags} come from the
    settings parses C{--ping-interval 5} and the others; L{fromOptions}
    turns the result into settings, and no option at all into the defaults.
    """

    class Options(usage.Options):
        optParameters = optParameters(Side.SERVER)
        optFlags = optFlags(Side.SERVER)

    options = Options()
    options.parseOptions(
        ["--ping-interval", "5", "--idle-timeout", "0", "--max-message-size", "64K", "--max-frame-size", "4K",
         "--close-timeout", "2", "--deflate"]
    )  # fmt: skip
    assert options["ping-interval"] == 5.0
    settings = fromOptions(options, Side.SERVER)
    assert settings == ConnectionSettings(
        pingInterval=5.0, maxMessageSize=64 << 10, maxFrameSize=4 << 10, closeTimeout=2.0, compression=True
    )
    empty = Options()
    empty.parseOptions([])
    assert fromOptions(empty, Side.SERVER) == ConnectionSettings()


def test_zero_turns_off_a_setting_whose_none_means_off() -> None:
    """
    On the command line C{0} stands for C{None} where C{None} means "off"
    (C{--ping-interval 0}: no keepalive; C{--idle-timeout 0}: never).
    """
    settings = parseServer("--ping-interval", "0", "--idle-timeout", "0")["settings"]
    assert settings.pingInterval is None and settings.idleTimeout is None
    namespace = clientParser().parse_args(["ws://x/", "--ping-interval", "0"])
    assert fromArguments(namespace, Side.CLIENT).pingInterval is None


def test_add_options_adds_every_server_setting() -> None:
    """
    L{addOptions} keeps the class's own options and C{postOptions}, adds one
    option per server setting (the repeatable ones collected in lists under
    the field's name), and leaves the settings in C{options["settings"]}.
    """
    options = parseServer(
        "--heartbeat", "0.5", "--subprotocol", "v2", "--subprotocol", "v1", "--allowed-origin", "same-origin",
        "--allowed-origin", "https://a.example", "--max-incomplete-size", "1M", "--ping-timeout", "3",
        "--handshake-timeout", "4", "--max-write-buffer", "2M", "--no-deflate",
    )  # fmt: skip
    assert options["heartbeat"] == 0.5 and options["ownPostOptionsRan"]
    assert options["subprotocols"] == ["v2", "v1"]
    assert options["allowedOrigins"] == ["same-origin", "https://a.example"]
    assert options["settings"] == ConnectionSettings(
        subprotocols=("v2", "v1"),
        allowedOrigins=("same-origin", "https://a.example"),
        maxIncompleteSize=1 << 20,
        pingTimeout=3.0,
        handshakeTimeout=4.0,
        maxWriteBuffer=2 << 20,
    )
    defaults = parseServer()
    assert defaults["subprotocols"] == [] and defaults["allowedOrigins"] == []
    assert defaults["settings"] == ConnectionSettings()
    text = str(ServerOptions())
    for declared in declarations(Side.SERVER):
        assert f"--{declared.flag}" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ping-interval", "-3"], "--ping-interval: must not be negative: -3"),
        (["--ping-timeout", "0"], "--ping-timeout: must be positive: 0"),
        (["--close-timeout", "soon"], "--close-timeout: not a number of seconds: 'soon'"),
        (["--max-message-size", "12Q"], "--max-message-size: not a size in bytes"),
        (["--max-frame-size", "0"], "--max-frame-size: must be positive: 0"),
        (["--subprotocol", "a,b"], "--subprotocol: not a subprotocol name"),
        (["--allowed-origin", "https://a.example https://b.example"], "--allowed-origin: not an origin"),
        (["--deflate", "--no-deflate"], "--deflate and --no-deflate contradict each other"),
    ],
)
def test_usage_errors_name_the_option(argv: list[str], message: str) -> None:
    """
    A bad value is a one-line L{usage.UsageError} that names the option.
    """
    with pytest.raises(usage.UsageError) as raised:
        parseServer(*argv)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_usage_defaults_can_be_given() -> None:
    """
    The generators take the defaults to show and use: a client-side option
    set defaults to no keepalive, and has no server-only options.
    """

    @addOptions(Side.CLIENT)
    class ClientOptions(usage.Options):
        pass

    options = ClientOptions()
    options.parseOptions([])
    assert options["settings"] == ConnectionSettings.defaults(Side.CLIENT)
    assert options["ping-interval"] is None
    with pytest.raises(usage.UsageError):
        ClientOptions().parseOptions(["--allowed-origin", "*"])
    custom = ConnectionSettings(closeTimeout=1.0)
    assert [p for p in optParameters(Side.SERVER, custom) if p[0] == "close-timeout"][0][2] == 1.0


def test_argparse_round_trip() -> None:
    """
    L{addArguments} adds a flag per client setting; L{fromArguments} builds
    the settings from the flags given, the others keeping their defaults.
    """
    namespace = clientParser().parse_args(
        ["ws://x/", "--ping-interval", "5", "--subprotocol", "v2", "--subprotocol", "v1", "--max-message-size",
         "16M", "--idle-timeout", "30", "--max-frame-size", "64K", "--deflate"]
    )  # fmt: skip
    assert namespace.url == "ws://x/"
    assert fromArguments(namespace, Side.CLIENT) == ConnectionSettings.defaults(Side.CLIENT).override(
        pingInterval=5.0,
        subprotocols=("v2", "v1"),
        maxMessageSize=16 << 20,
        idleTimeout=30.0,
        maxFrameSize=64 << 10,
        compression=True,
    )
    assert fromArguments(clientParser().parse_args(["ws://x/"]), Side.CLIENT) == ConnectionSettings.defaults(
        Side.CLIENT
    )
    noDeflate = clientParser().parse_args(["ws://x/", "--no-deflate"])
    assert fromArguments(noDeflate, Side.CLIENT, ConnectionSettings(compression=True)).compression is False


def test_argparse_defaults_can_be_given() -> None:
    """
    With C{defaults}, the help shows them and L{fromArguments} starts from
    them (a CLI may have defaults of its own, e.g. no message size limit).
    """
    own = ConnectionSettings.defaults(Side.CLIENT).override(maxMessageSize=None)
    parser = argparse.ArgumentParser(prog="client")
    addArguments(parser, Side.CLIENT, own)
    assert "no limit" in parser.format_help()
    assert fromArguments(parser.parse_args([]), Side.CLIENT, own).maxMessageSize is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ping-interval", "-3"], "argument --ping-interval: must not be negative: -3"),
        (["--max-message-size", "12Q"], "argument --max-message-size: not a size in bytes"),
        (["--subprotocol", "a b"], "argument --subprotocol: not a subprotocol name"),
        (["--allowed-origin", "*"], "unrecognized arguments: --allowed-origin"),
    ],
)
def test_argparse_errors_name_the_flag(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """
    A bad value is a usage error (exit status 2) whose one line names the
    flag; a client has no server-only flags.
    """
    with pytest.raises(SystemExit) as raised:
        clientParser().parse_args(["ws://x/", *argv])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_argparse_help_shows_every_setting_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    """
    C{--help} lists every client setting under "connection settings", with
    its help and default.
    """
    with pytest.raises(SystemExit):
        clientParser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "connection settings" in text
    for declared in declarations(Side.CLIENT):
        assert f"--{declared.flag}" in text
    assert "default: no keepalive" in text and "default: 8M" in text
