"""
Moved to L{txpulse.client.cli}; this path keeps working (the entry point of
installed txpulse-client scripts).
"""

from __future__ import annotations

from .client.cli import (
    EXIT_CLOSED_WITH_ERROR,
    EXIT_CONNECT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TLS_FAILED,
    EXIT_USAGE,
    NORMAL_CODES,
    CLIError,
    Output,
    buildParser,
    main,
)

__all__ = ["main", "buildParser", "EXIT_OK", "EXIT_CLOSED_WITH_ERROR", "EXIT_USAGE", "EXIT_CONNECT_FAILED", "EXIT_TLS_FAILED", "EXIT_REFUSED", "NORMAL_CODES", "CLIError", "Output"]
