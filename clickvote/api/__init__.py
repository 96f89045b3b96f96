"""The JSON API, by resource (meta, auth, orgs, settings, webhooks, groups, analytics,
public). Each operation is declared once (clickvote/api/schema.py): its route, its request
validation and its part of the OpenAPI document all come from that declaration."""

from __future__ import annotations

from clickvote.api import analytics, auth, groups, meta, orgs, public, settings, webhooks
from clickvote.api.schema import Operation

OPERATIONS: list[Operation] = [
    *meta.OPERATIONS,
    *auth.OPERATIONS,
    *orgs.OPERATIONS,
    *settings.OPERATIONS,
    *webhooks.OPERATIONS,
    *groups.OPERATIONS,
    *analytics.OPERATIONS,
    *public.OPERATIONS,
]
