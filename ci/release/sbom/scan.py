"""An offline BuildKit SBOM generator (docs/attestations/sbom-protocol.md in BuildKit).

Writes one SPDX 2.3 document per scanned root file system, wrapped in an in-toto
statement, listing its Debian packages (dpkg status) and Python distributions
(*.dist-info). Runs with the image's own python3; standard library only.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

STATEMENT = "https://in-toto.io/Statement/v0.1"
SPDX = "https://spdx.dev/Document"


def dpkg_packages(root: Path) -> list[dict[str, str]]:
    status = root / "var/lib/dpkg/status"
    if not status.is_file():
        return []
    out = []
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if "install ok installed" in fields.get("Status", ""):
            arch = fields.get("Architecture", "")
            purl = f"pkg:deb/debian/{fields['Package']}@{fields.get('Version', '')}?arch={arch}"
            out.append(
                {"name": fields["Package"], "version": fields.get("Version", ""), "purl": purl}
            )
    return out


def python_distributions(root: Path) -> list[dict[str, str]]:
    out = {}
    for meta in root.glob("**/*.dist-info/METADATA"):
        if any(part in ("proc", "sys", "dev") for part in meta.relative_to(root).parts[:1]):
            continue
        msg = email.parser.Parser().parsestr(meta.read_text(errors="replace"), headersonly=True)
        name, version = msg.get("Name", ""), msg.get("Version", "")
        if name:
            key = re.sub(r"[-_.]+", "-", name).lower()
            out[(key, version)] = {
                "name": name,
                "version": version,
                "purl": f"pkg:pypi/{key}@{version}",
            }
    return list(out.values())


def spdx(name: str, root: Path) -> dict[str, object]:
    packages = []
    for i, pkg in enumerate(dpkg_packages(root) + python_distributions(root)):
        packages.append(
            {
                "SPDXID": f"SPDXRef-Package-{i}",
                "name": pkg["name"],
                "versionInfo": pkg["version"],
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": pkg["purl"],
                    }
                ],
            }
        )
    seed = json.dumps(packages, sort_keys=True).encode()
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "https://spdx.org/spdxdocs/clickvote-"
        + hashlib.sha256(seed).hexdigest()[:32],
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "creators": ["Tool: clickvote-sbom-scanner-1"],
        },
        "packages": packages,
    }


def write(dest: Path, source: Path) -> None:
    statement = {
        "_type": STATEMENT,
        "predicateType": SPDX,
        "subject": [],
        "predicate": spdx(source.name, source),
    }
    (dest / f"{source.name}.spdx.json").write_text(json.dumps(statement))


def main() -> int:
    dest = Path(os.environ["BUILDKIT_SCAN_DESTINATION"])
    write(dest, Path(os.environ["BUILDKIT_SCAN_SOURCE"]))
    extras = os.environ.get("BUILDKIT_SCAN_SOURCE_EXTRAS", "")
    if extras and Path(extras).is_dir():
        for source in sorted(Path(extras).iterdir()):
            write(dest, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
