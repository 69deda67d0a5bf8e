"""Reading a machine-description file for a loader, with user-facing errors.

Every importer reads its input through :func:`read_bytes` / :func:`read_text`, so a missing,
unreadable, oversized or binary file gives the same kind of :class:`ConfigError` (naming the
file, and ``path`` as the field) whatever the format.
"""

from __future__ import annotations

import os
from pathlib import Path

from numasim.errors import ConfigError

MAX_FILE_BYTES = 64 << 20
"""Machine descriptions are kilobytes; anything this big is not one (or is hostile)."""
SNIPPET_CHARS = 200


def snippet(text: str) -> str:
    """What of a bad file a message may quote: its first non-empty line, at most 200
    characters, as a Python literal.  Never more: the file may be a link to someone's
    secrets, or megabytes long."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) > SNIPPET_CHARS:
        line = line[:SNIPPET_CHARS] + "..."
    more = len(text.strip().splitlines()) > 1
    return repr(line) + (" (first line)" if more else "")


def read_bytes(path: str | os.PathLike, *, what: str) -> bytes:
    """The bytes of ``path``; ``what`` names the expected content for the hint."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise ConfigError("is not a regular file (a FIFO, socket or device)",
                              file=str(path), field="path", hint=f"give the path of {what}")
        if path.is_dir():
            raise ConfigError(f"is a directory, not {what}", file=str(path), field="path",
                              hint=f"give the path of {what}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"file is {size} bytes; {what} is far smaller",
                              file=str(path), field="path",
                              hint=f"at most {MAX_FILE_BYTES >> 20} MiB is read")
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path), field="path",
                          hint=f"give the path of {what}") from None
    except PermissionError:
        raise ConfigError("permission denied", file=str(path), field="path") from None
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror or e}", file=str(path),
                          field="path") from None


def read_text(path: str | os.PathLike, *, what: str) -> str:
    """The UTF-8 text of ``path`` (a BOM and Windows line ends are tolerated)."""
    data = read_bytes(path, what=what)
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"binary data (a NUL byte at offset {nul}), not {what}",
                          file=str(path), field="path")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (bad byte at offset {e.start}), not {what}",
                          file=str(path), field="path") from None
    return text.replace("\r\n", "\n")
