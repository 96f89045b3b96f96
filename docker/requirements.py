"""Print pyproject.toml's requirements for a target machine, one per line, markers resolved.

``python3 requirements.py pyproject.toml MACHINE [EXTRA]``: the runtime dependencies, or those
of the optional group EXTRA. pip evaluates environment markers against the interpreter it runs
on, and the image build runs pip natively for every target (--platform/--target), so a marker
such as ``platform_machine != 'armv7l'`` would be judged for the build host. Here each marker
is evaluated with the target's ``platform_machine`` (uname -m of the target, e.g. armv7l)
instead, and what remains is written without markers.
"""

from __future__ import annotations

import sys
import tomllib

try:
    from packaging.requirements import Requirement
except ImportError:  # the image builder's venv: pip and its own copy of `packaging`, no more
    from pip._vendor.packaging.requirements import Requirement


def for_machine(specs: list[str], machine: str) -> list[str]:
    out = []
    for spec in specs:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"platform_machine": machine}):
            continue
        req.marker = None
        out.append(str(req))
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        project = tomllib.load(f)["project"]
    specs = project["optional-dependencies"][argv[2]] if len(argv) == 3 else project["dependencies"]
    print("\n".join(for_machine(specs, argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
