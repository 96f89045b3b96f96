"""Release logic: local registry, candidates, manifest lists, signed verification
reports and promotion. The invoke tasks in ``tasks/release.py`` are thin wrappers.

Modules that only compute (``oci``, ``reports``, ``quorum``, ``machine``'s pure
helpers, ``candidate``'s naming) need no Docker and are unit tested without it.
"""

from __future__ import annotations

from ci.shell import ToolError

ReleaseError = ToolError  # the name the release side knows it by
