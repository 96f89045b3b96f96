"""The JSON API, by resource (auth, orgs, settings, groups, analytics, public). Each operation
is declared once (clickvote/api/schema.py): its routes, its request validation and the
OpenAPI document all come from that declaration."""

from __future__ import annotations

from clickvote.api import analytics, auth, groups, orgs, public, settings
from clickvote.api.schema import Operation

OPERATIONS: list[Operation] = [
    *auth.OPERATIONS,
    *orgs.OPERATIONS,
    *settings.OPERATIONS,
    *groups.OPERATIONS,
    *analytics.OPERATIONS,
    *public.OPERATIONS,
]
