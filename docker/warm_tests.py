"""Image build, natively: what the test image's pytest and hypothesis would compute afresh.

Every ``docker run --rm`` of the test image starts from the image's files, so whatever
pytest and hypothesis cache on disk is computed again in each run, under QEMU emulation
10-25x slower than natively. Run in the image's own layout (the tests at their run-time
paths under ROOT, with the target's pytest and a native build of the same hypothesis
version on PYTHONPATH), this computes two such things once:

* hypothesis' Unicode tables (in HYPOTHESIS_STORAGE_DIRECTORY): which code points the
  ``utf-8`` codec encodes, the default alphabet of ``st.text()``. Hypothesis builds that
  table by encoding each of the 1.1 million code points: 1.6 s natively, 10-20 s emulated.
  The table depends only on the Unicode version and the codec (the same Python on every
  platform), and hypothesis keeps it per Unicode version.
* pytest's assertion-rewritten pycs of the test modules and conftests (``__pycache__/
  *.cpython-3XX-pytest-<version>.pyc``), which the image cannot write at run time
  (PYTHONDONTWRITEBYTECODE): the rewriting parses and recompiles each test module at every
  collection. These pycs carry the source's hash (pytest checks it before use) and code
  objects, which are the same on every platform of one Python version.

Both are caches: a missing or stale entry is recomputed at run time, never trusted. What
hypothesis leaves besides the tables is removed, and the tables are written again with a
fixed gzip header (hypothesis names its random temporary file in it), so two builds leave
the same bytes (reproducible images). The
rewritten pycs are written with pytest's own rewriting (private functions of
``_pytest.assertion.rewrite``); should a pytest release change them, this prints a warning
and the suite rewrites at run time as before.

Usage: python3 warm_tests.py ROOT (the directory holding pyproject.toml and the tests).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any


def hypothesis_tables() -> None:
    assert os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"), "set HYPOTHESIS_STORAGE_DIRECTORY"
    from hypothesis import strategies as st
    from hypothesis.errors import NonInteractiveExampleWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        st.text().example()  # builds (and stores) the tables st.text() draws from


class RewrittenPycs:
    """A pytest plugin: writes the rewritten pycs, then ends the session before collection."""

    def __init__(self) -> None:
        self.written: list[Path] = []
        self.error: str = ""

    def pytest_collection(self, session: Any) -> bool:
        try:
            self._write(session)
        except Exception as e:  # a pytest whose internals differ: a warning, not a failure
            self.error = f"{type(e).__name__}: {e}"
        return True  # collect nothing: the test modules import the target's compiled code

    def _write(self, session: Any) -> None:
        from _pytest.assertion import assertstate_key, rewrite

        config = session.config
        state = config.stash[assertstate_key]
        hook = state.hook
        hook.set_session(session)
        root = Path(config.rootpath)
        for top in config.getini("testpaths") or ["."]:
            for fn in sorted((root / top).rglob("*.py")):
                name = ".".join(fn.relative_to(root).with_suffix("").parts)
                if not hook._should_rewrite(name, str(fn), state):
                    continue
                source_hash, co = rewrite._rewrite_test(fn, config)
                pyc = rewrite.get_cache_dir(fn) / (fn.name[:-3] + rewrite.PYC_TAIL)
                pyc.parent.mkdir(exist_ok=True)
                if not rewrite._write_pyc(state, co, source_hash, pyc):
                    raise OSError(f"cannot write {pyc}")
                if rewrite._read_pyc(fn, pyc) is None:
                    raise ValueError(f"pytest does not accept the pyc it wrote: {pyc}")
                self.written.append(pyc)


def rewritten_pycs(root: Path) -> None:
    import pytest

    sys.dont_write_bytecode = False  # pytest writes no pycs otherwise
    plugin = RewrittenPycs()
    os.chdir(root)
    # The suite's own options (pyproject.toml's addopts), as in the image's runs.
    code = pytest.main(["-q", "-p", "no:cacheprovider", "--collect-only"], plugins=[plugin])
    if plugin.error or not plugin.written:
        why = plugin.error or f"no test module found (pytest exit {code})"
        print(f"warning: no rewritten pycs ({why}); the suite rewrites at run time", flush=True)
    else:
        print(f"{len(plugin.written)} rewritten pycs written", flush=True)


def stable_storage(storage: Path) -> None:
    """Hypothesis' storage as two builds write it alike: the Unicode tables only (not the
    constants it gathered from whatever modules were loaded, nor its temporary files), each
    gzip file without the temporary name and time its header recorded."""
    import gzip
    import shutil

    for name in ("constants", "tmp", "examples"):
        shutil.rmtree(storage / name, ignore_errors=True)
    for table in sorted(storage.rglob("*.gz")):
        data = gzip.decompress(table.read_bytes())
        with (
            table.open("wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f,
        ):
            f.write(data)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    rewritten_pycs(Path(argv[1]).resolve())
    hypothesis_tables()  # after pytest.main, which loads hypothesis' plugin before hypothesis
    stable_storage(Path(os.environ["HYPOTHESIS_STORAGE_DIRECTORY"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
