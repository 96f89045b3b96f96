"""Command line: clickvote serve | migrate | createuser | export | import."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from clickvote import __version__
from clickvote.config import Settings
from clickvote.security import CryptoError

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
    _common(sub.add_parser("migrate", help="apply database migrations"))
    cu = sub.add_parser("createuser", help="create a user with an organisation")
    _common(cu)
    cu.add_argument("--email", required=True)
    cu.add_argument("--password", required=True)
    cu.add_argument("--org", help="organisation name (default: the email's local part)")
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
    )


def cmd_serve(settings: Settings) -> int:
    import uvicorn

    from clickvote.app import SERVER_OPTIONS, create_app
    from clickvote.connguard import connection_cap, guarded_protocol, raise_fd_limit

    cap = connection_cap(settings.max_connections, raise_fd_limit())
    options = {**SERVER_OPTIONS, "http": guarded_protocol(cap, settings.header_timeout)}
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        **options,
    )
    return 0


async def _with_ctx(settings: Settings, fn: Any) -> Any:
    from clickvote.context import Context

    ctx = Context.build(settings)
    await ctx.start()
    try:
        return await fn(ctx)
    finally:
        await ctx.close()


async def _migrate(ctx: Any) -> int:
    version = await ctx.storage.schema_version()
    print(f"schema version {version}")
    return 0


async def _createuser(ctx: Any, email: str, password: str, org: str | None) -> int:
    from clickvote.routes import ApiError, Credentials, check_credentials, check_name
    from clickvote.security import hash_password
    from clickvote.storage import Conflict

    try:
        email, password = check_credentials(Credentials(email=email, password=password))
        org_name = check_name(org or email.split("@")[0], "org", minimum=1)
    except ApiError as exc:
        raise UserError(exc.message) from exc
    try:
        hashed = await asyncio.to_thread(hash_password, password, ctx.settings.bcrypt_rounds)
        user = await ctx.storage.create_user(email, hashed)
    except Conflict as exc:
        raise UserError(exc.message) from exc
    await ctx.storage.create_org(user.id, org_name, ctx.default_envs())
    print(f"created user {email} ({user.id})")
    return 0


async def export_data(ctx: Any, include_sessions: bool) -> dict[str, Any]:
    """Everything needed to move an installation. Secret keys are exported in clear (the
    target installation re-seals them with its own master key): keep the file private."""
    data = await ctx.storage.export_data(include_sessions)
    envs = data["tables"]["envs"]
    cols = envs["columns"]
    i = cols.index("secret_key_sealed")
    envs["columns"] = [*cols[:i], "secret_key", *cols[i + 1 :]]
    for row in envs["rows"]:
        row[i] = ctx.box.open_secret(row[i])
    return {"format": EXPORT_FORMAT, "version": 1, "clickvote": __version__, **data}


async def import_data(ctx: Any, data: Any) -> dict[str, int]:
    from clickvote.storage import Conflict

    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise UserError("not a ClickVote export file")
    tables = data.get("tables")
    if not isinstance(tables, dict) or "envs" not in tables:
        raise UserError("export file has no tables")
    envs = tables["envs"]
    try:
        cols = list(envs["columns"])
        i = cols.index("secret_key")
        rows = [list(r) for r in envs["rows"]]
        for row in rows:
            row[i] = ctx.box.seal_secret(str(row[i]))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"malformed envs table in export: {exc}") from exc
    cols[i] = "secret_key_sealed"
    tables = {**tables, "envs": {"columns": cols, "rows": rows}}
    try:
        await ctx.storage.import_data({"tables": tables})
    except Conflict as exc:
        raise UserError(f"{exc.message}: import needs a fresh data directory/database") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"malformed export: {exc}") from exc
    expected = {name: len(block.get("rows", [])) for name, block in tables.items()}
    actual = await ctx.storage.count_rows()
    wrong = {t: (n, actual.get(t)) for t, n in expected.items() if actual.get(t) != n}
    if wrong:
        detail = ", ".join(f"{t}: {n} in file, {got} stored" for t, (n, got) in wrong.items())
        raise UserError(f"import check failed ({detail})")
    return expected


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
        if args.command == "export":
            data = asyncio.run(
                _with_ctx(settings, lambda ctx: export_data(ctx, args.with_sessions))
            )
            text = json.dumps(data, indent=1)
            if args.output and args.output != "-":
                with open(args.output, "w", encoding="utf-8") as fh:
                    fh.write(text)
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
            counts = asyncio.run(_with_ctx(settings, lambda ctx: import_data(ctx, raw)))
            print("imported " + ", ".join(f"{n} {t}" for t, n in counts.items()))
            print("checked: the row counts in the database match the export")
            return 0
        raise UserError(f"unknown command {args.command}")
    except (UserError, ValueError, CryptoError) as exc:
        print(f"clickvote: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"clickvote: error: {exc}", file=sys.stderr)
        return 2
