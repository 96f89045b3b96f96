"""How we authenticate to a registry, for pushes and reads alike: the credentials
``docker login`` stored (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``:
``auths``, ``credHelpers`` or ``credsStore``), sent as HTTP Basic or exchanged for a bearer
token (the distribution token protocol) as the registry's 401 challenge asks. Without
stored credentials a Bearer challenge gets an anonymous token, as ``docker pull`` does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci.release import ReleaseError

TIMEOUT = 60.0


class Forbidden(ReleaseError):
    """Credentials the registry accepts, but not for what was asked."""


def docker_config() -> dict[str, Any]:
    home = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(home) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def credentials(registry: str, conf: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """(user, secret) that ``docker login REGISTRY`` stored, or None."""
    conf = docker_config() if conf is None else conf
    helper = (conf.get("credHelpers") or {}).get(registry) or conf.get("credsStore")
    if helper:
        try:
            proc = subprocess.run(
                [f"docker-credential-{helper}", "get"],
                input=registry.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            if proc.returncode == 0:
                found = json.loads(proc.stdout)
                return str(found.get("Username", "")), str(found.get("Secret", ""))
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass  # a helper that is missing or broken: the config's own auths, if any
    for key, entry in (conf.get("auths") or {}).items():
        if re.sub(r"^https?://|/.*$", "", key) == registry and entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, secret
    return None


def authorization(registry: str, challenge: str, scope: str, what: str) -> str:
    """The ``Authorization`` answering a registry's 401 ``challenge``: docker login's
    credentials as Basic, or a bearer token for ``scope`` (e.g. ``repository:REPO:pull``)
    asked with them (anonymously when none are stored)."""
    creds = credentials(registry)
    basic = "Basic " + base64.b64encode(":".join(creds).encode()).decode() if creds else ""
    if challenge.lower().startswith("basic"):
        if not basic:
            raise ReleaseError(
                f"{registry} wants credentials for a {what}: docker login {registry} first"
            )
        return basic
    return "Bearer " + bearer_token(challenge, scope, basic, what=what, registry=registry)


def refused(
    registry: str, repository: str, challenge: str, action: str, status: int = 401
) -> ReleaseError:
    """The error for a request the registry refused (``status``) although its challenge was
    answered: ``action`` is what was refused (``pull``, ``push to``)."""
    creds = credentials(registry)
    if creds is None:
        return ReleaseError(
            f"{registry} wants credentials to {action} {repository}: docker login {registry} first"
        )
    user = creds[0]
    if status == 403 or "insufficient_scope" in challenge:
        return Forbidden(f"{registry} does not let {user} {action} {repository}")
    return ReleaseError(
        f"{registry} refused the credentials docker login stored for it (user "
        f"{user}) for {repository}: docker login {registry} again"
    )


def bearer_token(
    challenge: str, scope: str, authorization: str = "", what: str = "", registry: str = ""
) -> str:
    """A token for `scope` from the realm a registry's Bearer `challenge` names (the
    distribution token protocol), asked with `authorization` (Basic credentials) if given."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    name, login = registry or "the registry", f"docker login {registry}".strip()
    if not challenge.lower().startswith("bearer") or "realm" not in params:
        raise ReleaseError(f"{name} wants credentials ({challenge[:80]})")
    query = {"scope": scope} | ({"service": params["service"]} if "service" in params else {})
    req = urllib.request.Request(
        params["realm"] + "?" + urllib.parse.urlencode(query),
        headers={"Authorization": authorization} if authorization else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            data = json.load(resp)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403) and authorization:
            raise ReleaseError(
                f"{name} refused the credentials docker login stored for it: "
                f"{params['realm']} answered {e.code} for a {what} token"
            ) from e
        if e.code in (401, 403):
            raise ReleaseError(
                f"{name} wants credentials for a {what}: {login} first "
                f"({params['realm']} answered {e.code})"
            ) from e
        raise ReleaseError(f"no {what} token for {name} from {params['realm']}: {e}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ReleaseError(f"no {what} token for {name} from {params['realm']}: {e}") from e
    token = data.get("token") or data.get("access_token")
    if not token:
        raise ReleaseError(f"no {what} token for {name} from {params['realm']}")
    return str(token)
