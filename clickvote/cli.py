"""Command line: clickvote serve | migrate | createuser | setpassword | export | import."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clickvote import __version__
from clickvote.config import Settings
from clickvote.security import CryptoError, load_master_key, write_master_key, write_private

if TYPE_CHECKING:
    from clickvote.context import Context

EXPORT_FORMAT = "clickvote-export"


class UserError(Exception):
    """A mistake by the user: printed on stderr, exit code 2."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (CLICKVOTE_DATA_DIR, default ./var)")
    p.add_argument(
        "--database-url", help="sqlite:///path or postgresql://... (CLICKVOTE_DATABASE_URL)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickvote", description="ClickVote server")
    parser.add_argument("--version", action="version", version=f"clickvote {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP + Socket.IO server")
    _common(serve)
    serve.add_argument("--host", help="bind address (CLICKVOTE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (CLICKVOTE_PORT, default 8000)")
    serve.add_argument("--redis-url", help="redis://... for multi-instance fan-out")
    serve.add_argument(
        "--workers", type=int, help="server processes (CLICKVOTE_WORKERS, default: one per core)"
    )
    _common(sub.add_parser("migrate", help="apply database migrations"))
    cu = sub.add_parser("createuser", help="create a user with an organisation")
    _common(cu)
    cu.add_argument("--email", required=True)
    cu.add_argument("--password", required=True)
    cu.add_argument("--org", help="organisation name (default: the email's local part)")
    sp = sub.add_parser("setpassword", help="set a user's password (hashed with scrypt)")
    _common(sp)
    sp.add_argument("--email", required=True)
    sp.add_argument("--password", required=True)
    ex = sub.add_parser("export", help="export everything as JSON")
    _common(ex)
    ex.add_argument("-o", "--output", help="file to write (default: stdout)")
    ex.add_argument("--with-sessions", action="store_true", help="include dashboard sessions")
    im = sub.add_parser("import", help="import a JSON export into an empty database")
    _common(im)
    im.add_argument("file", help="export file ('-' for stdin)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
        database_url=getattr(args, "database_url", None),
        redis_url=getattr(args, "redis_url", None),
        workers=getattr(args, "workers", None),
    )


def cmd_serve(settings: Settings) -> int:
    from clickvote import stopping

    stopping.install()  # first: it also covers the imports below (see clickvote/stopping.py)
    from clickvote import serving

    serving.lean_imports()  # before anything imports uvicorn (see clickvote/serving.py)
    from clickvote import workers

    if workers.WORKER_OF in os.environ:  # one of the processes of a `serve --workers N`
        return workers.run_worker(settings, os.environ[workers.WORKER_OF])
    count = workers.worker_count(settings.workers)
    if count > 1:
        return workers.serve(settings, count)
    from clickvote.app import create_app

    app = create_app(settings)
    return serving.run(
        app, host=settings.host, port=settings.port, **workers.server_options(settings)
    )


async def _with_ctx(settings: Settings, fn: Any, start: bool = True) -> Any:
    from clickvote.context import Context

    ctx = Context.build(settings)
    if start:
        await ctx.start()
    else:
        await ctx.storage.open()
    try:
        return await fn(ctx)
    finally:
        await ctx.close()


async def _migrate(ctx: Context) -> int:
    version = await ctx.storage.schema_version()
    print(f"schema version {version}")
    return 0


async def _createuser(ctx: Context, email: str, password: str, org: str | None) -> int:
    from clickvote import accounts
    from clickvote.storage import Conflict

    try:
        user, _ = await accounts.register(ctx, email, password, org)
    except (accounts.Refused, Conflict) as exc:
        raise UserError(exc.message) from exc
    print(f"created user {user.email} ({user.id})")
    return 0


async def _setpassword(ctx: Context, email: str, password: str) -> int:
    from clickvote import accounts

    try:
        user = await accounts.set_password(ctx, email, password)
    except accounts.Refused as exc:
        raise UserError(exc.message) from exc
    if user is None:
        raise UserError(f"no user {email.strip().lower()}")
    print(f"password set for {user.email} ({user.id})")
    return 0


# Tables whose secrets are sealed with the master key: (sealed column, column in the export).
# An export holds them in clear; an import seals them with the target's master key.
SEALED = {"envs": ("secret_key_sealed", "secret_key"), "webhooks": ("secret_sealed", "secret")}


async def export_data(ctx: Context, include_sessions: bool) -> dict[str, Any]:
    """Everything needed to move an installation. Secrets (environments' secret keys,
    webhooks' secrets) are exported in clear (the target installation re-seals them), and so
    is the master key, which signs the voter tokens and seals the login tokens already
    issued: keep the file private."""
    data = await ctx.storage.export_data(include_sessions)
    master = load_master_key(ctx.settings.data_dir, ctx.settings.master_key)
    data["keys"] = {"master": master.hex()}
    for table, (sealed, clear) in SEALED.items():
        block = data["tables"][table]
        i = block["columns"].index(sealed)
        block["columns"][i] = clear
        for row in block["rows"]:
            row[i] = ctx.box.open_secret(row[i])
    return {"format": EXPORT_FORMAT, "version": 1, "clickvote": __version__, **data}


def seal_tables(ctx: Context, tables: dict[str, Any]) -> dict[str, Any]:
    """The export's tables with their secrets sealed by this installation's master key."""
    out = dict(tables)
    for table, (sealed, clear) in SEALED.items():
        if table not in tables and table != "envs":
            continue  # an export from before webhooks
        try:
            cols = list(tables[table]["columns"])
            i = cols.index(clear)
            rows = [list(r) for r in tables[table]["rows"]]
            for row in rows:
                row[i] = ctx.box.seal_secret(str(row[i]))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise UserError(f"malformed {table} table in export: {exc}") from exc
        cols[i] = sealed
        out[table] = {"columns": cols, "rows": rows}
    return out


async def import_data(ctx: Context, data: Any) -> dict[str, int]:
    from clickvote.storage import Conflict
    from clickvote.storage.sql import ImportRefused

    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise UserError("not a ClickVote export file")
    tables = data.get("tables")
    if not isinstance(tables, dict) or "envs" not in tables:
        raise UserError("export file has no tables")
    tables = seal_tables(ctx, tables)
    # An export of an older schema goes into that schema, then the newer migrations move it on
    # (e.g. 0004 puts its voters in their namespaces).
    version = data.get("schema_version")
    await ctx.storage.migrate(version if isinstance(version, int) and version > 0 else None)
    try:
        await ctx.storage.import_data({"tables": tables})
    except Conflict as exc:
        raise UserError(f"{exc.message}: import needs a fresh data directory/database") from exc
    except ImportRefused as exc:
        raise UserError(f"nothing imported: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"malformed export: {exc}") from exc
    except Exception as exc:  # the database's own refusal: a message, not a traceback
        raise UserError(f"nothing imported: {type(exc).__name__}: {exc}") from exc
    await ctx.storage.migrate()
    expected = {name: len(block.get("rows", [])) for name, block in tables.items()}
    actual = await ctx.storage.count_rows()
    wrong = {t: (n, actual.get(t)) for t, n in expected.items() if actual.get(t) != n}
    if wrong:
        detail = ", ".join(f"{t}: {n} in file, {got} stored" for t, (n, got) in wrong.items())
        raise UserError(f"import check failed ({detail})")
    return expected


def adopt_master_key(settings: Settings, data: Any) -> str | None:
    """Before an import: keep the exported installation's master key, so the voter and login
    tokens it issued stay valid here. Returns a warning when this installation already has
    another master key (CLICKVOTE_MASTER_KEY, or a data directory in use)."""
    keys = data.get("keys") if isinstance(data, dict) else None
    exported = keys.get("master") if isinstance(keys, dict) else None
    if exported is None:
        return None
    try:
        old = bytes.fromhex(str(exported))
    except ValueError as exc:
        raise UserError("malformed master key in export (keys.master)") from exc
    if not settings.master_key and not (Path(settings.data_dir) / "master.key").exists():
        write_master_key(settings.data_dir, old)
        return None
    if load_master_key(settings.data_dir, settings.master_key) == old:
        return None
    return (
        "warning: this installation has another master key, so voter and login tokens "
        "issued by the exported one are not accepted here; to keep them, set "
        "CLICKVOTE_MASTER_KEY to the export's keys.master (before the first start)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        if args.command == "serve":
            return cmd_serve(settings)
        if args.command == "migrate":
            return int(asyncio.run(_with_ctx(settings, _migrate)))
        if args.command == "createuser":
            return int(
                asyncio.run(
                    _with_ctx(
                        settings, lambda ctx: _createuser(ctx, args.email, args.password, args.org)
                    )
                )
            )
        if args.command == "setpassword":
            return int(
                asyncio.run(
                    _with_ctx(settings, lambda ctx: _setpassword(ctx, args.email, args.password))
                )
            )
        if args.command == "export":
            data = asyncio.run(
                _with_ctx(settings, lambda ctx: export_data(ctx, args.with_sessions))
            )
            text = json.dumps(data, indent=1)
            if args.output and args.output != "-":
                write_private(args.output, text)
            else:
                sys.stdout.write(text + "\n")
            return 0
        if args.command == "import":
            try:
                if args.file == "-":
                    raw = json.load(sys.stdin)
                else:
                    with open(args.file, encoding="utf-8") as fh:
                        raw = json.load(fh)
            except OSError as exc:
                raise UserError(f"cannot read {args.file}: {exc.strerror}") from exc
            except json.JSONDecodeError as exc:
                raise UserError(f"{args.file} is not JSON: {exc}") from exc
            warning = adopt_master_key(settings, raw)
            counts = asyncio.run(
                _with_ctx(settings, lambda ctx: import_data(ctx, raw), start=False)
            )
            if warning:
                print(f"clickvote: {warning}", file=sys.stderr)
            print("imported " + ", ".join(f"{n} {t}" for t, n in counts.items()))
            print("checked: the row counts match the export and every tally equals its votes")
            return 0
        raise UserError(f"unknown command {args.command}")
    except (UserError, ValueError, CryptoError) as exc:
        print(f"clickvote: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"clickvote: error: {exc}", file=sys.stderr)
        return 2
