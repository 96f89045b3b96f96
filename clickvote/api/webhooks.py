"""The current environment's webhook (clickvote/webhooks.py): its URL, write-only secret and
bound on waiting events, a test event, and the delivery log."""

from __future__ import annotations

from typing import Any

from clickvote.accounts import Refused
from clickvote.api.schema import Answer, Operations, array, boolean, integer, nullable, obj, string
from clickvote.api.session import Call
from clickvote.storage import NotFound
from clickvote.storage.base import Webhook, WebhookAttempt
from clickvote.webhook_http import MAX_URL, BadDestination, parse_url, resolve
from clickvote.webhooks import BATCH

OPERATIONS = Operations()
MIN_SECRET, MAX_SECRET = 16, 256
LOG_LIMIT = 100
MAX_PENDING = 10_000_000  # the highest bound an environment may set on its waiting events
WEBHOOK = obj(
    {
        "url": nullable(string()),
        "secretSet": boolean(),  # the secret itself is never sent back
        "pending": integer(0),  # events waiting for delivery
        # past it, the oldest waiting events are discarded (the installation's by default)
        "maxPending": integer(1),
        "batchSize": integer(1),  # events per POST at most; above 1: always as a batch
        "updatedAt": nullable(integer()),
    },
    closed=True,
)
CHANGE = obj(
    {"url": string(1, MAX_URL)},
    # required when the environment has no webhook yet; left out: the current one stays
    {
        "secret": string(MIN_SECRET, MAX_SECRET),
        # left out: the current bound stays; null: the installation's (webhook_max_pending)
        "maxPending": nullable(integer(1, MAX_PENDING)),
        "batchSize": integer(1, BATCH),  # left out: the current one stays (new: 1)
    },
)
ATTEMPT = obj(
    {
        "id": string(),
        "eventId": string(),
        "type": string(),
        "attempt": integer(0),  # 0 for a discard (type "discarded")
        "status": nullable(integer()),
        "error": nullable(string()),
        "delivered": boolean(),
        "at": integer(),
        "durationMs": integer(0),
        "dropped": integer(0),  # events a discard dropped, the oldest waiting
    },
    closed=True,
)
LOG = obj({"deliveries": array(ATTEMPT), "pending": integer(0)}, closed=True)
LIMIT = obj(optional={"limit": integer(1, LOG_LIMIT, default=20)})


async def webhook_json(call: Call, hook: Webhook | None) -> dict[str, Any]:
    _, pending = await call.ctx.storage.webhook_log(call.auth.env.id, 0)
    return {
        "url": hook.url if hook else None,
        "secretSet": hook is not None,
        "pending": pending,
        "maxPending": max_pending(call, hook),
        "batchSize": hook.batch_size if hook else 1,
        "updatedAt": hook.updated_at if hook else None,
    }


def max_pending(call: Call, hook: Webhook | None) -> int:
    bound = hook.max_pending if hook else None
    return call.ctx.settings.webhook_max_pending if bound is None else bound


def attempt_json(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "eventId": a.event_id,
        "type": a.type,
        "attempt": a.attempt,
        "status": a.status,
        "error": a.error,
        "delivered": a.delivered,
        "at": a.at,
        "durationMs": a.duration_ms,
        "dropped": a.dropped,
    }


async def check_url(call: Call, url: str) -> str:
    """The URL as given, or Refused naming `url`: http/https only and, unless the operator
    allows them (webhook_allow_private), no host resolving to a non-public address."""
    settings = call.ctx.settings
    try:
        parts = parse_url(url)
        if not settings.webhook_allow_private:
            await resolve(parts, False, settings.webhook_timeout)
    except BadDestination as exc:
        raise Refused("url", str(exc)) from None
    return url


@OPERATIONS(
    "GET",
    "/settings/webhook",
    tag="webhooks",
    summary="The current environment's webhook (its secret only as set or not)",
    session=True,
    answers={200: Answer("the webhook", WEBHOOK)},
)
async def webhook_get(call: Call) -> dict[str, Any]:
    return await webhook_json(call, await call.ctx.storage.get_webhook(call.auth.env.id))


@OPERATIONS(
    "PUT",
    "/settings/webhook",
    tag="webhooks",
    summary="Set the current environment's webhook: its URL, (write-only) secret and bound",
    body=CHANGE,
    session=True,
    csrf=True,
    answers={200: Answer("the webhook", WEBHOOK)},
)
async def webhook_put(call: Call) -> dict[str, Any]:
    env, storage = call.auth.env, call.ctx.storage
    url = await check_url(call, call.body["url"].strip())
    secret = call.body.get("secret")
    current = await storage.get_webhook(env.id)
    if secret is not None:
        sealed = call.ctx.box.seal_secret(secret)
    elif current is not None:
        sealed = current.secret_sealed
    else:
        raise Refused("secret", "required when the environment has no webhook yet")
    bound = call.body.get("maxPending", current.max_pending if current else None)
    size = call.body.get("batchSize", current.batch_size if current else 1)
    hook = await storage.set_webhook(env.id, url, sealed, bound, size)
    return await webhook_json(call, hook)


@OPERATIONS(
    "DELETE",
    "/settings/webhook",
    tag="webhooks",
    summary="Remove the current environment's webhook (its undelivered events with it)",
    session=True,
    csrf=True,
    answers={200: Answer("the webhook, now none", WEBHOOK)},
)
async def webhook_delete(call: Call) -> dict[str, Any]:
    await call.ctx.storage.clear_webhook(call.auth.env.id)
    return await webhook_json(call, None)


@OPERATIONS(
    "POST",
    "/settings/webhook/test",
    tag="webhooks",
    summary="Queue a `test` event for the current environment's webhook",
    session=True,
    csrf=True,
    errors=(404,),
    answers={200: Answer("the queued event's id", obj({"id": string()}, closed=True))},
)
async def webhook_test(call: Call) -> dict[str, Any]:
    event_id = await call.ctx.storage.queue_test_event(call.auth.env.id)
    if event_id is None:
        raise NotFound("webhook")
    return {"id": event_id}


@OPERATIONS(
    "GET",
    "/settings/webhook/deliveries",
    tag="webhooks",
    summary="The current environment's newest delivery attempts, newest first",
    query=LIMIT,
    session=True,
    answers={200: Answer("the delivery log", LOG)},
)
async def webhook_deliveries(call: Call) -> dict[str, Any]:
    rows, pending = await call.ctx.storage.webhook_log(call.auth.env.id, call.params["limit"])
    return {"deliveries": [attempt_json(a) for a in rows], "pending": pending}
