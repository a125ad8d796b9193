"""Write outputs under a temporary name and rename them when complete.

An interrupted job then never leaves a file that looks finished (DESIGN.md, data contracts). Every output gets
at least the permissions of a plain new file under the user's umask (safetensors writes its files as 0600, which
would hide a tuned generator or a trained model from the rest of a group on a shared cluster).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a full quota, a file past the size limit


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds, else delete it.

    The temporary name keeps the suffix so tools that pick a format by extension (ffmpeg, pyarrow) still work. A
    full disk (or quota, or file size limit) met in the block raises an ``OSError`` that names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(tmp.stat().st_mode) | plain_file_mode())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in FULL or error.filename is not None:
            raise
        # A write to a full disk says only "No space left on device": name the output it was writing.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        tmp.unlink(missing_ok=True)


def plain_file_mode() -> int:
    """The permission bits ``open(path, "w")`` gives a new file: ``0o666`` less the process's umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports the umask in /proc without changing it; elsewhere it can only be read by setting it (and
    # setting it back), which other threads creating files at that instant would see.
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
