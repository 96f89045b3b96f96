"""`clickvote serve` stops on SIGTERM and SIGINT everywhere, as PID 1 of a container too.

In a container the server is PID 1, and the kernel delivers a signal to PID 1 only when it
has a handler for it: with the default disposition SIGTERM is dropped. uvicorn handles both
signals while it serves; after its graceful shutdown it restores the previous disposition
and raises the signal again, so that the process dies by it. Natively PID 1 ignores that
second SIGTERM and exits normally. Under qemu-user (the arm64 and armv7 images on an x86
host) PID 1 is QEMU, which emulates the default action itself: it sends itself the signal
to die by it, the kernel drops that for PID 1, and QEMU then waits for it forever, until
`docker stop` gives up and kills it. The same happens to a SIGTERM that arrives before
uvicorn has installed its handlers.

So ClickVote's own handlers stay installed for the life of the server: the signal never
meets the default action, and the process exits with status 0, both when it comes before
uvicorn serves (nothing is accepted yet) and when uvicorn raises it again after its
graceful shutdown.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def install() -> None:
    """Make SIGTERM and SIGINT end the process with status 0 (main thread only)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
