"""Writing files that hold secrets: atomically, and never readable by others."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str, *, keep_existing: bool = False) -> None:
    """Replace ``path`` with ``text``, mode 0600, so a reader never sees half a file.

    With ``keep_existing`` a file already there wins: of processes creating the
    same secret at once, each ends up reading the first one's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(text)
        if keep_existing:
            try:
                os.link(tmp, path)  # atomic, and never over an existing file
            except FileExistsError:
                pass
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
