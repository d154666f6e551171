"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the HTTP API's bodies.

Objects list their fields as ``required`` and leave ``additionalProperties`` open, so a
client keeps working when a field is added; tests close them to check that every field the
application serves is documented here.
"""

from __future__ import annotations

from typing import Any

from orchestrator.state import State

__all__ = ["COMPONENTS", "SCHEMAS", "SECTIONS"]

COMPONENTS = ("registry", "pool", "router", "workers", "lifecycle", "recycler")
"""The application's components, in start order (the names in health and stats)."""

SECTIONS = ("application", *COMPONENTS, "http")
"""The object-valued sections of the stats snapshot."""

LIFECYCLE_STATES = [state.value for state in State]

Schema = dict[str, Any]


def obj(required: Schema, optional: Schema | None = None, **extra: Any) -> Schema:
    """An object schema: ``required`` fields, then ``optional`` ones."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    out["required"] = list(required)
    return {**out, **extra}


def ref(name: str) -> Schema:
    """A reference to another schema of this document."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    return {**schema, "type": [schema["type"], "null"]}


def mapping(values: Schema, description: str) -> Schema:
    """An object whose keys are names and whose values follow ``values``."""
    return {"type": "object", "additionalProperties": values, "description": description}


BOOL: Schema = {"type": "boolean"}
STR: Schema = {"type": "string"}
ID: Schema = {"type": "integer", "minimum": 1}
COUNT: Schema = {"type": "integer", "minimum": 0}
SECONDS: Schema = {"type": "number", "minimum": 0}
TIME: Schema = {"type": "string", "format": "date-time"}
STATUS_CLASSES: Schema = obj({cls: COUNT for cls in ("1xx", "2xx", "3xx", "4xx", "5xx")})

STATS_SCHEMAS: dict[str, Schema] = {
    "ApplicationStats": obj({
        "name": STR, "version": STR, "pid": ID,
        "state": {"type": "string", "enum": LIFECYCLE_STATES},
        "started_at": nullable(TIME), "uptime_seconds": SECONDS, "jobs_in_flight": COUNT,
        "event_loop_lag_seconds": {**SECONDS, "description": "worst lateness, last 10 s"},
        "event_loop_lag_max_seconds": {**SECONDS, "description": "worst lateness since start"},
        "event_loop_blocked_total": {**COUNT, "description": "episodes of a blocked event loop"},
        "log_level": {"type": "string", "enum": ["debug", "info", "warning", "error"]},
        "log_level_reverts_at": {**nullable(TIME),
                                 "description": "when a level set by PUT /debug/loggers ends"},
        "event_subscribers": {**COUNT, "description": "clients of /debug/events"},
        "gc": ref("GcStats"),
    }),
    "Histogram": obj({
        "buckets": mapping(COUNT, "cumulative counts by upper bound in seconds, `+Inf` last"),
        "sum": SECONDS, "count": COUNT,
    }),
    "GcStats": obj({
        "frozen_objects": {**COUNT, "description": "objects frozen at start (`gc_freeze`)"},
        "collections_total": mapping(COUNT, "collections by generation (0, 1, 2)"),
        "pause_seconds": mapping(ref("Histogram"), "the loop's pauses by generation"),
        "longest_pause_seconds": SECONDS,
    }),
    "LatencyHistogram": obj({
        "buckets": mapping(COUNT, "cumulative counts by upper bound in seconds, `+Inf` last"),
        "sum": SECONDS, "count": COUNT,
        "p50": nullable(SECONDS), "p99": nullable(SECONDS),
    }),
    "JobKindStats": obj({
        "timeout_seconds": nullable(SECONDS), "retries": COUNT, "submitted_total": COUNT,
        "succeeded_total": COUNT, "failed_total": COUNT, "retried_total": COUNT,
        "timed_out_total": COUNT,
        "rejected_total": {**COUNT, "description": "submissions refused: the queue was full"},
        "latency_seconds": {**ref("LatencyHistogram"),
                            "description": "dequeue to outcome, all attempts"},
        "queue_wait_seconds": {**ref("LatencyHistogram"), "description": "enqueue to dequeue"},
    }),
    "RegistryStats": obj({
        "handlers": COUNT, "kinds": mapping(ref("JobKindStats"), "by job kind"),
    }),
    "PoolConnection": obj({
        "id": ID, "state": {"type": "string", "enum": ["idle", "in_use", "pinging", "closed"]},
        "uses": COUNT, "age_seconds": SECONDS, "idle_seconds": SECONDS,
    }),
    "PoolStats": obj({
        "enabled": BOOL, "size": COUNT, "idle": COUNT, "in_use": COUNT, "connecting": COUNT,
        "waiting": COUNT, "min_size": COUNT, "max_size": COUNT, "created_total": COUNT,
        "closed_total": COUNT, "connect_failures_total": COUNT, "acquire_timeouts_total": COUNT,
        "last_connect_error": {"oneOf": [{"type": "null"}, obj({
            "type": STR, "message": {**STR, "description": "at most 200 characters"},
            "at": TIME})]},
        "connections": {"type": "array", "items": ref("PoolConnection"),
                        "description": "at most `stats_max_items` entries"},
        "connections_omitted": COUNT,
    }),
    "RouterStats": obj({
        "accepting": BOOL, "queued": COUNT, "capacity": COUNT, "routed_total": COUNT,
        "rejected_total": COUNT, "oldest_queued_age_seconds": SECONDS,
        "full_ratio": {"type": "number", "minimum": 0, "maximum": 1,
                       "description": "share of the last `saturation_grace` seconds the "
                                      "queue was full"},
        "saturated": {**BOOL, "description": "in a saturation episode (unhealthy)"},
        "rejected_by_reason": obj({"queue_full": COUNT, "standing_wait": COUNT}),
        "standing": {**BOOL, "description": "every job leaving the queue for `queue_interval` "
                                            "waited over `queue_target`: submissions that would "
                                            "wait over it are refused (`Overloaded`)"},
        "queue_target_seconds": {**nullable(SECONDS),
                                 "description": "null: the queue is bounded by length only"},
    }),
    "Worker": obj({
        "id": ID,
        "state": {"type": "string",
                  "enum": ["idle", "busy", "draining", "stuck", "stopped", "dead"]},
        "jobs_total": COUNT, "failed_total": COUNT,
        "current_job": {"oneOf": [{"type": "null"}, obj({
            "id": ID, "kind": STR, "attempt": ID, "running_seconds": SECONDS})]},
        "age_seconds": SECONDS,
        "last_error": {"oneOf": [{"type": "null"}, obj({
            "type": STR, "message": {**STR, "description": "at most 200 characters"},
            "at": TIME, "job_id": nullable(ID)})]},
    }),
    "WorkersStats": obj({
        "count": COUNT, "alive": COUNT, "busy": COUNT, "idle": COUNT,
        "stuck": {**COUNT, "description": "workers whose handler ignores its cancellation"},
        "jobs_completed_total": COUNT, "jobs_failed_total": COUNT, "deaths_total": COUNT,
        "stuck_total": COUNT, "abandoned_total": COUNT,
        "workers": {"type": "array", "items": ref("Worker"),
                    "description": "at most `stats_max_items` entries"},
        "workers_omitted": COUNT,
        "adaptive_limit": {**BOOL, "description": "whether the in-progress limit follows the "
                                                  "loop's lag (false: it is `workers`)"},
        "in_progress_limit": {**COUNT, "description": "jobs that may be taken or run at once"},
        "in_progress": {**COUNT, "description": "workers holding a place under the limit"},
        "limit_floor": COUNT, "lag_target_seconds": SECONDS,
        "limit_keep": {"type": "number", "minimum": 0,
                       "description": "jobs' bandwidth-delay product; a cut stays near it"},
        "lag_seconds": {**SECONDS, "description": "the loop's own lag the limit last read"},
        "loop_busy": {"type": "number", "minimum": 0, "maximum": 1,
                      "description": "share of its CPU time the loop used, as last read"},
        "limit_lowered_total": COUNT,
    }),
    "LifecycleStats": obj({
        "state": {"type": "string", "enum": LIFECYCLE_STATES},
        "started_at": nullable(TIME), "uptime_seconds": SECONDS, "restarts_total": COUNT,
        "pending_restarts": COUNT,
        "transitions": {"type": "array", "items": obj({
            "state": {"type": "string", "enum": LIFECYCLE_STATES}, "at": TIME})},
    }),
    "RecyclerStats": obj({
        "running": BOOL, "interval_seconds": SECONDS, "sweeps_total": COUNT,
        "sweep_errors_total": COUNT, "last_sweep_at": nullable(TIME),
        "sweep_duration_seconds": SECONDS,
        "workers_recycled_total": mapping(COUNT, "by reason: `max_jobs`, `max_age`"),
        "connections_recycled_total": mapping(
            COUNT, "by reason: `max_uses`, `max_age`, `idle_timeout`"),
    }),
    "HttpStats": obj({
        "state": {"type": "string", "enum": ["running", "failed", "stopping", "stopped"]},
        "host": STR, "port": nullable({"type": "integer", "minimum": 0, "maximum": 65535}),
        "url": nullable(STR), "draining": BOOL,
        "requests_total": {**STATUS_CLASSES, "description": "responses by status class"},
        "requests_by_route": mapping(STATUS_CLASSES, "by route (`other`: no route)"),
        "fast_probes_total": {**COUNT, "description": "probes answered on the fast path "
                                                     "(counted in the routes' figures too)"},
        "rate_limit": obj({"enabled": BOOL, "clients": COUNT, "rejected_total": COUNT}),
        "auth": obj({"enabled": BOOL, "failures_total": COUNT}),
        "snapshot": obj({
            "ttl_seconds": SECONDS, "hits_total": COUNT, "misses_total": COUNT,
            "errors_total": COUNT, "last_build_seconds": SECONDS,
        }),
    }, {
        "connections": obj({
            "active": COUNT, "max": COUNT, "rejected_total": COUNT, "evicted_total": COUNT,
            "header_timeouts_total": COUNT, "bad_requests_total": COUNT,
        }),
        "error": {**STR, "description": "why the server failed to start"},
    }),
}  # fmt: skip
"""One schema per stats section (and the objects inside them)."""

_SECTION_SCHEMAS = {
    "application": "ApplicationStats", "registry": "RegistryStats", "pool": "PoolStats",
    "router": "RouterStats", "workers": "WorkersStats", "lifecycle": "LifecycleStats",
    "recycler": "RecyclerStats", "http": "HttpStats",
}  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "Error": obj({
        "error": {**STR, "description": "stable machine-readable code", "examples": ["not_found"]},
        "detail": {**STR, "description": "human-readable explanation (never echoes input)"},
        "request_id": {**STR, "description": "the request's `X-Request-ID`"},
    }),
    "Index": obj({"name": STR, "endpoints": mapping(STR, "description by path")}),
    "Health": obj(
        {"healthy": BOOL, "timestamp": TIME,
         "components": mapping(BOOL, "each component's verdict")},
        {"checks": mapping(obj({"healthy": BOOL, "reason": nullable(STR)},
                               {"since": {**TIME, "description": "in this state since"}}),
                           "with `?verbose`; without the token a reason reads `hidden: "
                           "send a valid bearer token to see it`")},
    ),
    "ComponentHealth": obj(
        {"component": {"type": "string", "enum": list(COMPONENTS)}, "healthy": BOOL,
         "reason": {**nullable(STR), "description": "why (null: nothing to say); without "
                    "the token `hidden: send a valid bearer token to see it`"}},
    ),
    "Live": obj({"status": {"const": "alive"}}),
    "Ready": {"oneOf": [
        obj({"ready": {"const": True}}),
        obj({"ready": {"const": False},
             "reason": {**STR, "description": "`draining` or `unhealthy: <components>`"}}),
    ]},
    "Drain": obj({"draining": BOOL}),
    "DebugJobs": obj({
        "in_flight": {"type": "array", "items": obj({
            "id": ID, "kind": STR, "attempt": COUNT,
            "state": {"type": "string", "enum": ["queued", "running"]},
            "worker": nullable(ID), "age_seconds": SECONDS, "connection": nullable(ID),
            "entry_id": nullable({**STR, "description": "the job source's entry id"})})},
        "in_flight_total": COUNT, "in_flight_omitted": COUNT,
        "recent_failures": {"type": "array", "items": obj({
            "at": TIME, "kind": STR, "job_id": ID, "attempt": COUNT, "error_type": STR,
            "message": STR, "duration_seconds": SECONDS},
            {"entry_id": {**STR, "description": "a job source's jobs only"}})},
        "slowest": mapping({"type": "array", "items": obj({
            "job_id": ID, "attempt": COUNT, "seconds": SECONDS, "at": TIME})},
            "by job kind: the slowest of the last minute, five at most"),
    }),
    "DebugTasks": obj(
        {"tasks_total": COUNT, "tasks_omitted": COUNT},
        {"tasks": {"type": "array", "items": obj({
            "name": STR, "coroutine": STR,
            "state": {"type": "string", "enum": ["pending", "cancelling", "done"]},
            "stack": {"type": "array", "items": STR,
                      "description": "`file:line function`, innermost last"}})},
         "groups": {"type": "array", "items": obj({
             "count": ID, "coroutine": STR, "example": STR,
             "stack": {"type": "array", "items": STR}})}},
    ),
    "Loggers": obj({
        "level": {"type": "string", "enum": ["debug", "info", "warning", "error"]},
        "default_level": {"type": "string", "enum": ["debug", "info", "warning", "error"]},
        "reverts_at": nullable(TIME), "configured": BOOL,
        "levels": {"type": "array", "items": STR},
    }),
    "LoggersChange": obj(
        {"level": {"type": "string", "description": "any case: DEBUG is debug",
                   "enum": ["debug", "info", "warning", "error",
                            "DEBUG", "INFO", "WARNING", "ERROR"]}},
        {"seconds": {"type": "number", "minimum": 1, "maximum": 3600,
                     "description": "how long, then it turns back (default 300)"}},
    ),
    "DebugConfig": obj({
        section: mapping(obj({"value": {}, "source": {"type": "string", "enum": [
            "default", "keyword", "environment", "flag", "file", "command", "module"]}}),
            "by setting; a token appears as {\"count\": n}")
        for section in ("core", "http")
    }),
    "HttpDisabled": obj({"state": {"const": "disabled"}},
                        description="`enable_http=False`: there is nothing else to say"),
    "Stats": obj(
        {**{name: ref(schema) for name, schema in _SECTION_SCHEMAS.items()},
         "http": {"oneOf": [ref("HttpStats"), ref("HttpDisabled")]},
         "generated_at": {**TIME, "description": "UTC time of the snapshot"}},
        description="`get_stats()` of the application plus `generated_at`",
    ),
    "StatsSection": {"anyOf": [ref(schema) for schema in _SECTION_SCHEMAS.values()]},
    **STATS_SCHEMAS,
}  # fmt: skip
"""Every schema the document references, by name."""
