"""Progress bars for long work: in the terminal of whoever runs it, never in a notebook's outputs.

Inside a Jupyter kernel (papermill, nbval, the rendered book) anything written to stdout/stderr becomes
a cell output, so a bar there would end up on the page. ``medssl notebooks`` therefore exports
``MEDSSL_PROGRESS_TO`` (its own stderr, as a ``/proc`` path, when that is a terminal); a kernel draws its
bars there and nowhere else. Outside a kernel bars go to stderr as usual. Always ``tqdm.std``: the
widget flavour of ``tqdm.auto`` warns when ipywidgets is missing, and that warning lands on the page.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Iterable, TextIO

from tqdm.std import tqdm

ENV = "MEDSSL_PROGRESS_TO"


def in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = getattr(shell, "get_ipython", lambda: None)()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


@lru_cache(maxsize=1)
def _kernel_stream(target: str | None) -> TextIO | None:
    if not target:
        return None
    try:
        return open(target, "w", buffering=1)
    except OSError:
        return None


def stream() -> TextIO | None:
    """Where bars go now: stderr outside a kernel; inside one, the runner's terminal or nowhere."""
    if in_kernel():
        return _kernel_stream(os.environ.get(ENV))
    return sys.stderr


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True,
        **kwargs) -> tqdm:
    """A tqdm bar that is silent (but still iterates) when disabled or when there is nowhere to draw it."""
    out = stream() if enabled else None
    return tqdm(iterable, total=total, desc=desc, file=out, disable=out is None, dynamic_ncols=True, **kwargs)


def terminal_target() -> str | None:
    """The path a child kernel can open to reach this process's terminal (Linux), or None."""
    try:
        if sys.stderr.isatty() and os.path.exists(f"/proc/{os.getpid()}/fd/2"):
            return f"/proc/{os.getpid()}/fd/2"
    except (AttributeError, ValueError):
        pass
    return None
