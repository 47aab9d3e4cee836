"""Text from data made safe to print: control characters escaped, long values cut.

Symbols, file names and cell values come from files the user may not have written; printed raw,
an escape sequence in them would drive the user's terminal (move the cursor, rewrite earlier
lines, set the window title). Everything the command line prints goes through :func:`escape`,
and messages that quote a value from a file use :func:`printable`.
"""

from __future__ import annotations

import io
import re
from typing import Any

# C0 and C1 controls and DEL, but not the newline, tab and carriage return that output itself
# uses (a progress bar redraws its line with a carriage return).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """``text`` with every control character but newline, tab and carriage return written as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


class EscapingStream(io.TextIOBase):
    """A text stream that writes to ``stream`` with :func:`escape` applied."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def printable(value: object, limit: int = 40) -> str:
    """A value from a file, quoted and escaped for a message, cut to ``limit`` characters."""
    text = str(value)
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return repr(cut).encode("ascii", "backslashreplace").decode("ascii")
