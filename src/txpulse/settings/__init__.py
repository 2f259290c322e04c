# -*- test-case-name: tests.settings.test_settings -*-
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

So adding a setting is one edit, in L{txpulse.settings.fields} (plus using
it where it takes effect), and the four entry points cannot drift apart.

The command line spells seconds as numbers (C{0} turns off a setting whose
C{None} means "off") and sizes as bytes with an optional C{K}, C{M} or C{G}
suffix (binary: C{64K} is 65536). The parsers (L{parseSeconds},
L{parseSize}, ...) are public, for an entry point's other options.

The package:

    - L{txpulse.settings.fields}: the dataclass, its field declarations
      and their validation;
    - L{txpulse.settings.parsing}: the value parsers;
    - L{txpulse.settings.commandline}: the C{usage.Options} and C{argparse}
      generators.

Every public name is importable from C{txpulse.settings}. Importing it loads
no Twisted (C{usage} is imported by the generators that need it) and nothing
beyond the standard library and the core.
"""

from __future__ import annotations

from .commandline import (
    addArguments,
    addOptions,
    argumentType,
    fromArguments,
    fromOptions,
    optFlags,
    optParameters,
    usageCoerce,
)
from .fields import (
    DEFAULT_MAX_WRITE_BUFFER,
    UNSET,
    ConnectionSettings,
    Declaration,
    Setting,
    Side,
    Unset,
    declarations,
)
from .parsing import parseCount, parsePositiveCount, parsePositiveSeconds, parseSeconds, parseSize

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
