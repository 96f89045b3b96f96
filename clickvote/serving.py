"""`clickvote serve`'s server: uvicorn's Server and Config, without what serving never uses.

`import uvicorn` runs uvicorn/__init__.py, which imports uvicorn's command line
(uvicorn.main: click, and the reload and worker supervisors: multiprocessing, tempfile),
and uvicorn.config imports logging.config (logging.handlers, socketserver, pickle) for the
dictConfig of its LOGGING_CONFIG. One process serving in the foreground uses none of it:
about 2.5 MB of an idle server's memory (Python 3.11). So `serve` (`lean_imports`, before
anything imports uvicorn):

- registers the `uvicorn` package without running its __init__ (its submodules import as
  usual) and gives it the names uvicorn's own modules take from it (Config, Server,
  __version__); any other name asked of it (uvicorn.run, uvicorn.main) runs the real
  __init__ first, so nothing is lost, only not loaded unasked;
- registers `logging.config` the same way (loaded by its first use);
- gives uvicorn's loggers what LOGGING_CONFIG gives them, with plain handlers (`run`).

tests/app/test_lean_imports.py holds a started server to this; tests/app/test_serving.py checks
the deferred uvicorn and the loggers.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

DEFERRED = ("uvicorn", "logging.config")


def defer(name: str) -> ModuleType:
    """Register module `name` without running it; its first missing attribute runs it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load(attr: str) -> Any:
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = load
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def lean_imports() -> None:
    """Before uvicorn is imported: uvicorn's package and logging.config, deferred."""
    if "uvicorn" in sys.modules:
        return
    for name in DEFERRED:
        defer(name)
    package = sys.modules["uvicorn"]
    from uvicorn._version import __version__
    from uvicorn.config import Config
    from uvicorn.server import Server

    package.__dict__.update(__version__=__version__, Config=Config, Server=Server)


def server_log_handler() -> logging.Handler:
    """uvicorn's "default" handler: stderr, lines as `INFO:     message`."""
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=None))
    return handler


def configure_logging() -> None:
    """uvicorn's LOGGING_CONFIG (uvicorn.config), set up without logging.config."""
    from uvicorn.logging import AccessFormatter

    default = server_log_handler()
    access = logging.StreamHandler(sys.stdout)
    fmt = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
    access.setFormatter(AccessFormatter(fmt))
    for name, handler in (("uvicorn", default), ("uvicorn.access", access)):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)


def run(
    app: Any,
    make_server: Callable[[Any], Any] | None = None,
    sockets: list[socket.socket] | None = None,
    **options: Any,
) -> int:
    """uvicorn.run(app, **options) for one process in the foreground (no reload; a worker of
    `serve --workers N` passes its `make_server` and inherited `sockets`); returns uvicorn's
    exit status for a server that could not start."""
    from uvicorn.config import STARTUP_FAILURE, Config

    from clickvote.graceful import Server

    configure_logging()
    config = Config(app, log_config=None, **options)
    server = make_server(config) if make_server else Server(config)
    server.run(sockets=sockets)  # a stop signal ends it with SystemExit(0) (clickvote/stopping.py)
    return 0 if server.started else STARTUP_FAILURE
