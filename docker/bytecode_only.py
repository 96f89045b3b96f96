"""Leave the installed dependencies (a pip --target directory) as byte code only.

    python3 bytecode_only.py LIB PREFIX

Each module's source in LIB is compiled to a pyc where the source was (imported without it,
as `compileall -b` writes them), recording PREFIX/<its path below LIB> as its file name (where
the image puts LIB: tracebacks name that file and line), and the source goes; so do type stubs
(.pyi) and the __pycache__ pycs of removed sources. The sources stay of modules that read their
own source at import: anyio's packages build their lazy-import table from it (a pyc alone
makes anyio import every submodule, ~3 MB more at start). Each distribution's RECORD is made
to match (a removed .py becomes its .pyc, unhashed, as pip records generated files; removed
stubs and caches leave it). What the dependencies add to the image is about halved.
"""

from __future__ import annotations

import csv
import io
import py_compile
import re
import sys
from pathlib import Path

# anyio's `if TYPE_CHECKING or not install_lazy_importer():` (anyio/_lazyimport.py reads the
# module's source with inspect.getsource to find the names it imports lazily)
READS_OWN_SOURCE = re.compile(rb"^if TYPE_CHECKING or not install_lazy_importer\(\)", re.M)


def reads_own_source(source: Path) -> bool:
    return READS_OWN_SOURCE.search(source.read_bytes()) is not None


def compile_in_place(lib: Path, prefix: str) -> list[Path]:
    """Every source of lib to its pyc beside it, the source removed; returns those kept."""
    kept = []
    for source in sorted(lib.rglob("*.py")):
        if reads_own_source(source):
            kept.append(source)
            continue
        py_compile.compile(
            str(source),
            cfile=str(source.with_suffix(".pyc")),
            dfile=f"{prefix}/{source.relative_to(lib)}",
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        source.unlink()
    return kept


def drop_leftovers(lib: Path) -> None:
    """Type stubs, and the cached pycs of removed sources (those of kept ones stay)."""
    for stub in lib.rglob("*.pyi"):
        stub.unlink()
    for cached in sorted(lib.rglob("__pycache__/*.pyc")):
        if not (cached.parent.parent / (cached.name.split(".", 1)[0] + ".py")).exists():
            cached.unlink()
    for cache in sorted(lib.rglob("__pycache__"), reverse=True):
        if not any(cache.iterdir()):
            cache.rmdir()


def record_rows(lib: Path, rows: list[list[str]]) -> list[list[str]]:
    """RECORD rows as the files now are: a removed .py as its .pyc, removed caches and stubs
    left out; rows of files outside these changes stay as they were."""
    out = []
    for row in rows:
        path = row[0] if row else ""
        if not path or (lib / path).exists():
            out.append(row)
        elif path.endswith(".py") and (lib / (path + "c")).exists():
            out.append([path + "c", "", ""])
        elif "__pycache__/" not in path and not path.endswith(".pyi"):
            out.append(row)
    return out


def rewrite_records(lib: Path) -> None:
    for record in sorted(lib.glob("*.dist-info/RECORD")):
        rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(record_rows(lib, rows))
        record.write_text(text.getvalue(), encoding="utf-8")


def bytecode_only(lib: Path, prefix: str) -> list[Path]:
    kept = compile_in_place(lib, prefix)
    drop_leftovers(lib)
    rewrite_records(lib)
    return kept


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kept = bytecode_only(Path(argv[1]), argv[2].rstrip("/"))
    for source in kept:
        print(f"bytecode_only: kept {source} (reads its own source)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
