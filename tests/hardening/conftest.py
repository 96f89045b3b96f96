"""Hardening tests reuse the app suite's in-process server and clients (a separate server
instance for this package, so floods and storms do not disturb the app tests)."""

from __future__ import annotations

from app.conftest import (
    TIMEOUT,
    Client,
    Dashboard,
    Server,
    clients,
    dash,
    free_port,
    login,
    server,
    setup,
)

__all__ = ["TIMEOUT", "Client", "Dashboard", "Server", "clients", "dash", "free_port", "login"]
__all__ += ["server", "setup", "truth"]


def truth(server: Server, group_id: str, vote_to: str) -> tuple[int, int]:
    """(voters, sum) recomputed from the stored per-user values."""
    rows = server.ctx.storage.run_sync(  # type: ignore[attr-defined]
        lambda tx: tx.all(
            "SELECT value FROM votes WHERE group_id = ? AND vote_to = ?", group_id, vote_to
        ),
        False,
    )
    values = [r[0] for r in rows if r[0] != 0]
    return len(values), sum(values)
