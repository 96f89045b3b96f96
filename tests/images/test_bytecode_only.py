"""docker/bytecode_only.py: a pip --target directory left as byte code only, its modules
still importable, their tracebacks naming the image's paths, anyio-style packages (which read
their own source) kept whole, and RECORD matching the files."""

from __future__ import annotations

import compileall
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/opt/clickvote/site-packages"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bytecode_only", ROOT / "docker" / "bytecode_only.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bytecode_only = _load()

FILES = {
    "pkg/__init__.py": "from pkg.mod import fail\n",
    "pkg/mod.py": "def fail():\n    x = 1\n    raise ValueError('from mod')\n",
    "pkg/mod.pyi": "def fail() -> None: ...\n",
    "lazy/__init__.py": (
        "import sys\nTYPE_CHECKING = False\n\n\ndef install_lazy_importer():\n"
        "    return True\n\n\nif TYPE_CHECKING or not install_lazy_importer():\n"
        "    import json\n"
    ),
    "pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
}
RECORD = [
    ["pkg/__init__.py", "sha256=a", "25"],
    ["pkg/mod.py", "sha256=b", "50"],
    ["pkg/mod.pyi", "sha256=c", "26"],
    [f"pkg/__pycache__/mod.cpython-{sys.version_info[0]}{sys.version_info[1]}.pyc", "", ""],
    ["lazy/__init__.py", "sha256=d", "120"],
    ["pkg-1.0.dist-info/METADATA", "sha256=e", "50"],
    ["pkg-1.0.dist-info/RECORD", "", ""],
    ["../../bin/pkg", "sha256=f", "200"],
]


def make_lib(lib: Path) -> None:
    for name, text in FILES.items():
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_text(text)
    with (lib / "pkg-1.0.dist-info" / "RECORD").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(RECORD)
    # as the Dockerfile's deps stage leaves them before: every module compiled in __pycache__
    assert compileall.compile_dir(str(lib), quiet=1)


def test_sources_give_way_to_pycs_where_they_were(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    make_lib(lib)
    kept = bytecode_only.bytecode_only(lib, PREFIX)
    assert kept == [lib / "lazy" / "__init__.py"]
    left = sorted(str(p.relative_to(lib)) for p in lib.rglob("*") if p.is_file())
    cached = [p for p in left if p.startswith("lazy/__pycache__/")]
    assert len(cached) == 1, left  # the kept source's cached pyc stays
    assert left == sorted(
        [
            "lazy/__init__.py",
            *cached,
            "pkg-1.0.dist-info/METADATA",
            "pkg-1.0.dist-info/RECORD",
            "pkg/__init__.pyc",
            "pkg/mod.pyc",
        ]
    )
    rows = list(csv.reader((lib / "pkg-1.0.dist-info" / "RECORD").open()))
    assert rows == [
        ["pkg/__init__.pyc", "", ""],
        ["pkg/mod.pyc", "", ""],
        ["lazy/__init__.py", "sha256=d", "120"],
        ["pkg-1.0.dist-info/METADATA", "sha256=e", "50"],
        ["pkg-1.0.dist-info/RECORD", "", ""],
        ["../../bin/pkg", "sha256=f", "200"],
    ]


PROBE = """
import json, sys, traceback
import lazy, pkg
try:
    pkg.fail()
except ValueError:
    tb = traceback.format_exc()
print(json.dumps({"pkg": pkg.mod.__file__, "lazy": lazy.__file__, "cached": lazy.__cached__,
                  "tb": tb}))
"""


def test_byte_code_imports_and_traces_as_installed(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    make_lib(lib)
    bytecode_only.bytecode_only(lib, PREFIX)
    env = {**os.environ, "PYTHONPATH": str(lib), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["pkg"] == str(lib / "pkg" / "mod.pyc")
    assert found["lazy"] == str(lib / "lazy" / "__init__.py")
    assert Path(found["cached"]).exists()
    assert f'File "{PREFIX}/pkg/mod.py", line 3, in fail' in found["tb"], found["tb"]
