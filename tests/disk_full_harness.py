"""Run a command's ``__main__`` with a disk that fills up: ``python tests/disk_full_harness.py DIR N module args...``.

Every file opened for writing under ``DIR`` after the first ``N`` such opens writes to ``/dev/full``, so its
writes fail with the real ``OSError: [Errno 28] No space left on device`` (no root, no tmpfs needed).
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import sys


def _fill_up(root: str, allowed: int) -> None:
    real_open = builtins.open
    opened = [0]

    def open_(file, mode="r", *args, **kwargs):
        writing = isinstance(file, (str, os.PathLike)) and any(m in mode for m in "wax+")
        if writing and os.path.abspath(os.fspath(file)).startswith(root + os.sep):
            opened[0] += 1
            if opened[0] > allowed:
                return real_open("/dev/full", mode.replace("x", "w").replace("a", "w"), *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = open_


if __name__ == "__main__":
    root, allowed, module, *argv = sys.argv[1:]
    _fill_up(os.path.abspath(root), int(allowed))
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
