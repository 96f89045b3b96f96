"""Print pyproject.toml's or a lock file's requirements for a target machine, markers resolved.

``python3 requirements.py pyproject.toml|LOCK MACHINE [EXTRA]``: pyproject's runtime
dependencies, or those of the optional group EXTRA; or the lines of a lock file
(docker/lock/<group>.txt, written by `inv lock`) that apply to MACHINE, with their hashes.
pip evaluates environment markers against the interpreter it runs
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


def locked_for_machine(text: str, machine: str) -> list[str]:
    """The lines of a lock file that apply to ``machine``: ``name==version --hash=...``."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, _, hashes = line.partition(" --hash=")
        kept = for_machine([spec.strip()], machine)
        out += [f"{kept[0]} --hash={' '.join(hashes.split())}"] if kept else []
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    if not argv[0].endswith(".toml"):
        with open(argv[0]) as f:
            print("\n".join(locked_for_machine(f.read(), argv[1])))
        return 0
    with open(argv[0], "rb") as f:
        project = tomllib.load(f)["project"]
    specs = project["optional-dependencies"][argv[2]] if len(argv) == 3 else project["dependencies"]
    print("\n".join(for_machine(specs, argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
