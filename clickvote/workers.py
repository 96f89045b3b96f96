"""`clickvote serve --workers N`: N server processes on one listening socket.

The supervising process migrates the database once, makes the master key, binds host:port
once and runs the hub (clickvote/hub.py) on a Unix socket in a private (0700) directory. It
then starts N workers (`clickvote serve` again, told by WORKER_OF which one it is), each a
whole server on the inherited socket that shares live updates, token buckets and session
counts through the hub (clickvote/hublink.py), and restarts one that dies. SIGTERM or SIGINT
stops them all: each gets SIGTERM (uvicorn's graceful shutdown), one still running STOP_WAIT
seconds later SIGKILL. With one worker, `clickvote serve` is one process as it always was (no
hub, no supervisor).

An upgrade in place (a new clickvote installed under a running server) takes effect at the
first worker restart: a worker whose version differs from its supervisor's would not speak its
hub's language, so it exits with UPGRADED, and the supervisor stops the others and runs
`clickvote serve` again with the same arguments in its own process (exec: same process id for
a service manager), on the new version; connections open at that moment are closed, as by a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from clickvote import __version__, serving, stopping
from clickvote.config import Settings
from clickvote.connguard import (
    Route,
    SharedCount,
    connection_cap,
    guarded_protocol,
    raise_fd_limit,
)
from clickvote.hub import Hub

log = logging.getLogger("clickvote.workers")
STOP_WAIT = 8.0  # seconds a worker has to stop (uvicorn's graceful shutdown takes up to 3, a
# hung database 2 within them: clickvote/storage/base.py STOP_GRACE)
RESTART_PAUSE = 1.0  # seconds before restarting a worker that died within its first second
HUB_SOCKET = "hub.sock"
STARTUP_FAILURE = 3  # exit status of a server that could not start (uvicorn.config's)
WORKER_OF = "CLICKVOTE_WORKER_OF"  # set for a worker process: "INDEX:FD:DIR"
CONNECTIONS = "connections"  # the workers' connection counts (connguard.SharedCount)
BACKLOG = 2048
SUPERVISOR_VERSION = "CLICKVOTE_SUPERVISOR_VERSION"  # the version its supervisor runs
UPGRADED = 4  # exit status of a worker whose version differs from its supervisor's


def worker_count(setting: int) -> int:
    """`--workers`/CLICKVOTE_WORKERS; 0 (the default): one per core this process may use."""
    if setting < 0:
        raise ValueError(f"--workers {setting}: 0 (one per core) or more")
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def server_options(
    settings: Settings, route: Route | None = None, shared: SharedCount | None = None
) -> dict[str, Any]:
    """uvicorn's options for one server process (a worker: `route`, clickvote/handover.py;
    `shared`, the connections of all the workers, under one cap)."""
    from clickvote.app import SERVER_OPTIONS

    fd_cap = connection_cap(settings.max_connections, raise_fd_limit())
    if shared is None:
        http = guarded_protocol(fd_cap, settings.header_timeout)
    else:
        http = guarded_protocol(
            settings.max_connections, settings.header_timeout, route, shared, fd_cap
        )
    return {
        **SERVER_OPTIONS,
        "http": http,
        "log_level": settings.log_level,
        "proxy_headers": True,
    }


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the CLICKVOTE_* environment of a worker."""
    env = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        env["CLICKVOTE_" + f.name.upper()] = str(value).lower() if f.type == "bool" else str(value)
    return env


def listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def _prepare(settings: Settings) -> None:
    """Once, before any worker starts: migrations, and the master key file."""
    from clickvote.context import Context

    ctx = Context.build(settings)
    await ctx.start()
    await ctx.close()


def serve(settings: Settings, workers: int) -> int:
    """Run `workers` server processes until SIGTERM or SIGINT."""
    stopping.install()
    raise_fd_limit()  # for the workers too: they inherit it
    logging.basicConfig(level=settings.log_level.upper(), handlers=[serving.server_log_handler()])
    settings = replace(settings, workers=workers)
    asyncio.run(_prepare(settings))
    try:
        sock = listen(settings.host, settings.port)
    except OSError as exc:  # as a single server: the error logged, uvicorn's exit status
        log.error("%s", exc)
        return STARTUP_FAILURE
    with sock, tempfile.TemporaryDirectory(prefix="clickvote-") as rundir:
        os.chmod(rundir, 0o700)
        SharedCount.create(str(Path(rundir) / CONNECTIONS), workers)
        supervisor = Supervisor(settings, workers, sock, rundir)
        asyncio.run(supervisor.run())
    if supervisor.upgraded:
        restart_on_new_version()
    return 0


def restart_on_new_version() -> None:
    """Run this `clickvote serve` command again in this process, on the installed version."""
    log.warning("clickvote was upgraded under this server: starting it again on the new version")
    logging.shutdown()
    time.sleep(RESTART_PAUSE)  # never a tight loop, whatever the installed files do
    os.execv(sys.executable, sys.orig_argv)


class Supervisor:
    def __init__(self, settings: Settings, workers: int, sock: socket.socket, rundir: str) -> None:
        self.settings, self.count, self.sock, self.rundir = settings, workers, sock, rundir
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.upgraded = False  # a worker found another version installed: restart on it

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in stopping.STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stopping.set)
        hub = Hub(str(Path(self.rundir) / HUB_SOCKET))
        await hub.start()
        log.info("serving on %s:%d with %d workers", *self.sock.getsockname()[:2], self.count)
        keepers = [asyncio.create_task(self._keep(i)) for i in range(self.count)]
        await self.stopping.wait()
        await self._stop_all()
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        await hub.close()

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        fd = self.sock.fileno()
        env = {**os.environ, **settings_env(self.settings)}
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clickvote",
            "serve",
            pass_fds=(fd,),
            env={**env, WORKER_OF: f"{index}:{fd}:{self.rundir}", SUPERVISOR_VERSION: __version__},
        )

    async def _keep(self, index: int) -> None:
        """Worker `index`, restarted whenever it ends, until the supervisor stops."""
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                proc = self.procs[index] = await self._spawn(index)
            except OSError as exc:  # out of processes or memory: try again shortly
                log.error("cannot start worker %d: %s", index, exc)
                await asyncio.sleep(RESTART_PAUSE)
                continue
            code = await proc.wait()
            if self.stopping.is_set():
                return
            if code == UPGRADED:
                self.upgraded = True
                self.stopping.set()
                return
            log.warning(
                "worker %d (pid %d) ended with status %s: restarting", index, proc.pid, code
            )
            # its connections died with it: not counted against the cap until it is back
            SharedCount(str(Path(self.rundir) / CONNECTIONS), index, self.count).close()
            if time.monotonic() - started < 1.0:
                await asyncio.sleep(RESTART_PAUSE)

    async def _stop_all(self) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(proc.wait()) for proc in running]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=STOP_WAIT)
        for proc in running:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if late:
            await asyncio.wait(late, timeout=STOP_WAIT)


def run_worker(settings: Settings, worker_of: str) -> int:
    """One worker (`worker_of`: "INDEX:FD:DIR", WORKER_OF): a whole server on the inherited
    socket FD, linked to the hub in DIR. Run by `clickvote serve` (clickvote/cli.py) after
    stopping.install() and serving.lean_imports(), as a single server is."""
    from clickvote.app import create_app
    from clickvote.handover import Handover, WorkerServer
    from clickvote.hublink import HubLink

    index, fd, rundir = worker_of.split(":", 2)
    supervisor_runs = os.environ.get(SUPERVISOR_VERSION, __version__)
    if supervisor_runs != __version__:
        log.error("clickvote %s is installed, its server runs %s", __version__, supervisor_runs)
        return UPGRADED
    link = HubLink(str(Path(rundir) / HUB_SOCKET))
    app = create_app(settings, hub=link, worker=int(index))
    handover = Handover(rundir, int(index))
    shared = SharedCount(str(Path(rundir) / CONNECTIONS), int(index), settings.workers)
    options = server_options(settings, handover.route, shared)
    return serving.run(
        app,
        make_server=lambda config: WorkerServer(config, handover),
        sockets=[socket.socket(fileno=int(fd))],
        **options,
    )
