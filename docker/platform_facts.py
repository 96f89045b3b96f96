"""One platform's facts from docker/platforms.toml, for the image build's native stages.

``python3 platform_facts.py platforms.toml PLATFORM FACT [GLIBC_MINOR]`` prints FACT of PLATFORM
(Docker's TARGETPLATFORM, e.g. linux/arm/v7): ``machine`` or ``debian`` as the table has it, or
``pip-platforms``: pip's ``--platform`` options for its wheels, manylinux_2_17 up to
manylinux_2_<GLIBC_MINOR> for its machine, then its older tags. A platform the table lacks is
an error that names it.
"""

from __future__ import annotations

import sys
import tomllib
from typing import Any


def facts(table: dict[str, dict[str, Any]], platform: str) -> dict[str, Any]:
    if platform not in table:
        raise SystemExit(f"unsupported platform {platform}: not in docker/platforms.toml")
    return table[platform]


def wheel_platforms(row: dict[str, Any], glibc_minor: int) -> list[str]:
    machine = row["machine"]
    tags = [f"manylinux_2_{v}_{machine}" for v in range(17, glibc_minor + 1)]
    return tags + list(row.get("wheel_tags", []))


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        row = facts(tomllib.load(f)["platforms"], argv[1])
    if argv[2] == "pip-platforms":
        minor = int(argv[3]) if len(argv) == 4 else 17
        print(" ".join(f"--platform {t}" for t in wheel_platforms(row, minor)))
    else:
        print(row[argv[2]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
