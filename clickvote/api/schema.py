"""One declaration per operation of the JSON API: its method and path, its parameters and
body as JSON Schema, its answers per status code, whether it needs the session and the CSRF
header. Requests are validated with these schemas (each compiled by fastjsonschema on its first
use, so a server that only counts votes never loads the compiler) and the OpenAPI document
(clickvote/api/openapi.py) is written from them: the two can't drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import fastjsonschema

JSON = dict[str, Any]
Handler = Callable[[Any], Awaitable[Any]]
DIGITS = re.compile(r"-?[0-9]{1,18}")


# --- JSON Schema, kept tiny -------------------------------------------------------------------
def string(min_length: int | None = None, max_length: int | None = None, **extra: Any) -> JSON:
    out: JSON = {"type": "string", **extra}
    if min_length is not None:
        out["minLength"] = min_length
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> JSON:
    out: JSON = {"type": "integer", **extra}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def number() -> JSON:
    return {"type": "number"}


def boolean() -> JSON:
    return {"type": "boolean"}


def const(value: Any) -> JSON:
    return {"const": value}


def enum(*values: str, **extra: Any) -> JSON:
    return {"type": "string", "enum": list(values), **extra}


def array(items: JSON) -> JSON:
    return {"type": "array", "items": items}


def nullable(schema: JSON) -> JSON:
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def obj(required: JSON | None = None, optional: JSON | None = None, closed: bool = False) -> JSON:
    """An object with `required` and `optional` properties (name -> schema); `closed`: no
    others (answers); requests may carry others, which are ignored."""
    out: JSON = {"type": "object", "properties": {**(required or {}), **(optional or {})}}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


def merge(*schemas: JSON, closed: bool = True) -> JSON:
    """The properties of several object schemas as one (a group with its stats...)."""
    props: JSON = {}
    required: list[str] = []
    for s in schemas:
        props.update(s["properties"])
        required += s.get("required", [])
    return obj(
        {k: props[k] for k in required},
        {k: v for k, v in props.items() if k not in required},
        closed,
    )


# --- answers and operations ---------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One status code's answer: its body's schema and media type, its headers."""

    description: str
    schema: JSON | None = None
    media: str = "application/json"
    headers: dict[str, JSON] = field(default_factory=dict)  # name -> schema (always sent)


class Invalid(Exception):
    """A request that doesn't fit its operation's schema: [(field, problem), ...]."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(f"{errors[0][0]}: {errors[0][1]}")


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    tag: str
    summary: str
    answers: dict[int, Answer]
    path_params: JSON | None = None  # obj(...) of the path's parameters
    query: JSON | None = None  # obj(...) of the query string's parameters
    headers: JSON | None = None  # obj(...) of request headers the handler reads
    body: JSON | None = None  # the JSON body's schema
    session: bool = False  # needs the session cookie (401 without)
    csrf: bool = False  # and the CSRF header (403 without)
    errors: tuple[int, ...] = ()  # error statuses besides those the declaration implies
    _checks: dict[str, Callable[[Any], Any]] = field(default_factory=dict, repr=False)

    def validator(self, part: str) -> Callable[[Any], Any]:
        """The compiled schema of `part` (compiled on first use, then kept)."""
        check = self._checks.get(part)
        if check is None:
            check = self._checks[part] = compile_schema(getattr(self, part))
        return check

    def check(self, part: str, value: Any) -> Any:
        """`value` validated against the schema of `part` (defaults filled in), or Invalid."""
        schema = getattr(self, part)
        if part in ("path_params", "query", "headers"):
            value = coerce(schema, value)
        return integral(schema, self.validator(part)(value))

    def error_statuses(self) -> list[int]:
        """Every error status this operation can answer (422: the field rules of
        clickvote/fields.py apply to any query string)."""
        out = {422, *self.errors}
        if self.session:
            out |= {401, 403}
        if self.body is not None or self.method in ("POST", "PUT", "DELETE", "PATCH"):
            out.add(413)
        if self.path_params:
            out.add(404)
        return sorted(out)


def compile_schema(schema: JSON) -> Callable[[Any], Any]:
    """A validator of `schema`: the value with defaults filled in, or Invalid."""
    import fastjsonschema

    validate = fastjsonschema.compile(schema)

    def check(value: Any) -> Any:
        try:
            return validate(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise Invalid([problem(exc)]) from None

    return check


class Operations(list[Operation]):
    """A resource's operations; `@OPERATIONS("GET", "/path", ...)` declares one."""

    def __call__(self, method: str, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            self.append(Operation(method, path, handler, **declared))
            return handler

        return add


# --- validation ---------------------------------------------------------------------------------
def coerce(schema: JSON, values: dict[str, str]) -> dict[str, Any]:
    """Path, query and header values are text: integers where the schema wants them."""
    props = schema.get("properties", {})
    out: dict[str, Any] = dict(values)
    for name, value in values.items():
        if props.get(name, {}).get("type") == "integer" and DIGITS.fullmatch(value):
            out[name] = int(value)
    return out


def integral(schema: JSON, value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer: the handlers get 5."""
    if not isinstance(value, dict):
        return value
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        wants_int = kind == "integer" or (isinstance(kind, list) and "integer" in kind)
        if wants_int and isinstance(value.get(name), float) and math.isfinite(value[name]):
            value[name] = int(value[name])
    return value


TYPES = {
    "integer": "an integer",
    "string": "a string",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def problem(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """(field, what is wrong) of a validation failure, in the API's words."""
    path = [str(p) for p in (exc.path or [])[1:]]
    rule, definition = exc.rule, exc.rule_definition
    if rule == "required":
        given = exc.value if isinstance(exc.value, dict) else {}
        missing = next((n for n in definition if n not in given), definition[0])
        return ".".join([*path, missing]), "required"
    name = ".".join(path) or "body"
    if rule == "type":
        kinds = definition if isinstance(definition, list) else [definition]
        return name, "must be " + " or ".join(TYPES.get(str(k), str(k)) for k in kinds)
    return name, rule_words(str(rule), definition, exc)


def rule_words(rule: str, definition: Any, exc: Exception) -> str:
    if rule in ("minLength", "maxLength"):
        return f"must be at {'least' if rule == 'minLength' else 'most'} {definition} characters"
    if rule in ("minimum", "maximum"):
        return f"must be at {'least' if rule == 'minimum' else 'most'} {definition}"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in definition if v is not None)
    if rule == "const":
        return f"must be {definition!r}"
    if rule == "pattern":
        return f"must match {definition}"
    return str(exc).removeprefix("data").strip()
