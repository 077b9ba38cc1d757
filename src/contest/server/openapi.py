"""The OpenAPI 3.1 document of the REST API (``GET /openapi.json``).

Written by hand rather than generated: the routes are few, and a hand-written contract is what
clients (and the schemathesis fuzz test in the suite) hold the server to. Keep it in step with
:mod:`contest.server.restapi`: the fuzz test fails when an answer leaves what is written here.
"""

from __future__ import annotations

import copy
from typing import Any

from contest import __version__

MAX_JOB_ID = (1 << 63) - 1
STATES = [
    "JobStateUnknown",
    "JobStateStarted",
    "JobStateCompleted",
    "JobStateFailed",
    "JobStatePaused",
    "JobStatePauseFailed",
    "JobStateCancelling",
    "JobStateCancelled",
    "JobStateCancellationFailed",
]


#: printable ASCII, so that ConTest's 32-byte limit is 32 characters
_REQUESTOR = {"type": "string", "pattern": "^[ -~]{1,32}$", "minLength": 1, "maxLength": 32}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "An error, explained")

_JOB_ID_PARAM = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job's ID",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_JOB_ID},
}


def _filter(name: str, description: str, item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description + " Repeat the parameter for several values.",
        "style": "form",
        "explode": True,
        "schema": {
            "type": "array",
            "items": item or {"type": "string", "minLength": 1},
            "maxItems": 100,
        },
    }


def _int_param(name: str, low: int, high: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": low, "maximum": high},
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "details": {"type": "array", "items": _ref("DescriptorProblem")},
        },
    },
    "DescriptorProblem": {
        "type": "object",
        "required": ["path", "message"],
        "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
    },
    "Job": {
        "type": "object",
        "required": [
            "job_id",
            "name",
            "requestor",
            "server_id",
            "state",
            "state_time",
            "request_time",
            "tags",
        ],
        "properties": {
            "job_id": {"type": "integer", "minimum": 1},
            "name": {"type": "string"},
            "requestor": {"type": "string"},
            "server_id": {"type": "string"},
            "state": {"type": "string", "enum": STATES},
            "state_time": {"type": ["string", "null"]},
            "request_time": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "JobDetail": {
        "description": "A job, and the targets it waits for (null while it waits for none)",
        "allOf": [
            _ref("Job"),
            {
                "type": "object",
                "required": ["waiting"],
                "properties": {"waiting": {"oneOf": [_ref("Waiting"), {"type": "null"}]}},
            },
        ],
    },
    "JobList": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "NewJob": {
        "type": "object",
        "required": ["descriptor"],
        "properties": {
            "descriptor": {
                "description": "A job descriptor: a JSON object, or its JSON or YAML text",
                "oneOf": [{"type": "object"}, {"type": "string", "minLength": 1}],
            },
            "requestor": _REQUESTOR,
        },
    },
    "RetryRequest": {
        "type": "object",
        "properties": {"requestor": _REQUESTOR},
    },
    "Created": {
        "type": "object",
        "required": ["job_id"],
        "properties": {
            "job_id": {"type": "integer", "minimum": 1},
            "retry_of": {"type": "integer", "minimum": 1},
        },
    },
    "Stopping": {
        "type": "object",
        "required": ["job_id", "state"],
        "properties": {"job_id": {"type": "integer"}, "state": {"type": "string"}},
    },
    "Target": {
        "type": "object",
        "required": ["ID"],
        "properties": {
            "ID": {"type": "string"},
            "FQDN": {"type": "string"},
            "PrimaryIPv4": {"type": "string"},
            "PrimaryIPv6": {"type": "string"},
            "TMS": {},
        },
    },
    "Report": {
        "type": "object",
        "required": ["JobID", "ReporterName", "ReportTime", "Success", "Data"],
        "properties": {
            "JobID": {"type": "integer"},
            "RunID": {"type": "integer"},
            "ReporterName": {"type": "string"},
            "ReportTime": {"type": "string"},
            "Success": {"type": "boolean"},
            "Data": {},
        },
    },
    "JobReport": {
        "type": "object",
        "required": ["JobID", "RunReports", "FinalReports"],
        "properties": {
            "JobID": {"type": "integer"},
            "RunReports": {
                "type": ["array", "null"],
                "items": {"type": "array", "items": _ref("Report")},
            },
            "FinalReports": {"type": ["array", "null"], "items": _ref("Report")},
        },
    },
    "TargetStatus": {
        "type": "object",
        "required": ["JobID", "RunID", "TestName", "Target", "InTime", "OutTime", "Error"],
        "properties": {
            "JobID": {"type": "integer"},
            "RunID": {"type": "integer"},
            "TestName": {"type": "string"},
            "TestStepName": {"type": "string"},
            "TestStepLabel": {"type": "string"},
            "Target": _ref("Target"),
            "InTime": {"type": "string"},
            "OutTime": {"type": "string"},
            "Error": {"type": "string"},
            "Events": {"type": ["array", "null"]},
        },
    },
    "RunStatus": {
        "type": "object",
        "required": ["JobID", "RunID", "StartTime", "TestStatuses"],
        "properties": {
            "JobID": {"type": "integer"},
            "RunID": {"type": "integer"},
            "StartTime": {"type": "string"},
            "TestStatuses": {"type": ["array", "null"]},
        },
    },
    "Status": {
        "description": "ConTest's job status document, key for key",
        "type": "object",
        "required": [
            "Name",
            "State",
            "StateErrMsg",
            "StartTime",
            "EndTime",
            "RunStatus",
            "RunStatuses",
            "JobReport",
        ],
        "properties": {
            "Name": {"type": "string"},
            "State": {"type": "string"},
            "StateErrMsg": {"type": "string"},
            "StartTime": {"type": "string"},
            "EndTime": {"type": ["string", "null"]},
            "RunStatus": {"oneOf": [_ref("RunStatus"), {"type": "null"}]},
            "RunStatuses": {"type": ["array", "null"], "items": _ref("RunStatus")},
            "JobReport": _ref("JobReport"),
        },
    },
    "Progress": {
        "type": "object",
        "required": ["State", "Run", "Elapsed", "Steps"],
        "properties": {
            "State": {"type": "string", "enum": STATES},
            "Run": {"type": "integer", "minimum": 0},
            "Elapsed": {"type": "number", "minimum": 0},
            "Steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["Test", "Step", "InFlight", "Passed", "Failed"],
                    "properties": {
                        "Test": {"type": "string"},
                        "Step": {"type": "string"},
                        "InFlight": {"type": "integer", "minimum": 0},
                        "Passed": {"type": "integer", "minimum": 0},
                        "Failed": {"type": "integer", "minimum": 0},
                    },
                },
            },
            "Waiting": {
                "description": "present while the job waits for targets other jobs hold",
                **_ref("Waiting"),
            },
        },
    },
    "Waiting": {
        "description": "The targets a started job waits for, each with the job holding it",
        "type": "object",
        "required": ["Targets", "HeldBy", "Since", "Timeout", "Text"],
        "properties": {
            "Targets": {"type": "array", "items": {"type": "string"}},
            "HeldBy": {"type": "object", "additionalProperties": {"type": "integer"}},
            "Since": {"type": "number", "description": "Unix seconds: when the wait began"},
            "Timeout": {"type": "string", "description": "Go duration, e.g. 5m0s"},
            "Text": {"type": "string", "description": "waiting for dut1 (held by job 3)"},
        },
    },
    "Event": {
        "type": "object",
        "required": ["sequence", "emit_time", "job_id", "name", "payload"],
        "properties": {
            "sequence": {"type": "integer"},
            "emit_time": {"type": "string"},
            "job_id": {"type": "integer"},
            "run_id": {"type": "integer"},
            "test_name": {"type": "string"},
            "step_label": {"type": "string"},
            "test_attempt": {"type": "integer"},
            "target": {"oneOf": [_ref("Target"), {"type": "null"}]},
            "name": {"type": "string"},
            "payload": {},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "next_after"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_after": {
                "type": "integer",
                "minimum": 0,
                "description": "Pass as `after` to get the next events",
            },
        },
    },
    "Descriptor": {
        "type": "object",
        "required": ["job_id", "descriptor"],
        "properties": {"job_id": {"type": "integer"}, "descriptor": {}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string"},
            "server_id": {"type": "string"},
            "error": {"type": "string"},
        },
    },
    "Server": {
        "type": "object",
        "required": [
            "instance_id",
            "server_id",
            "host",
            "pid",
            "version",
            "listen",
            "started_at",
            "heartbeat_at",
            "heartbeat_age",
            "lease",
            "draining",
            "jobs",
        ],
        "properties": {
            "instance_id": {"type": "string", "description": "Unique among live servers"},
            "server_id": {"type": "string", "description": "The ServerID its API shows"},
            "host": {"type": "string"},
            "pid": {"type": "integer"},
            "version": {"type": "string"},
            "listen": {"type": "string", "description": "The URL it listens on"},
            "started_at": {"type": "number", "description": "Unix seconds, database clock"},
            "heartbeat_at": {"type": "number", "description": "Unix seconds, database clock"},
            "heartbeat_age": {"type": "number", "description": "Seconds, database clock"},
            "lease": {"type": "number", "description": "Its --job-lease, in seconds"},
            "draining": {"type": "boolean"},
            "jobs": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The running jobs it holds the lease of",
            },
        },
    },
    "ServerList": {
        "type": "object",
        "required": ["servers"],
        "properties": {"servers": {"type": "array", "items": _ref("Server")}},
    },
    "Version": {
        "type": "object",
        "required": ["api_version", "server_id", "version"],
        "properties": {
            "api_version": {"type": "integer"},
            "server_id": {"type": "string"},
            "version": {"type": "string"},
        },
    },
}


def _job_op(op_id: str, summary: str, ok: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok, "400": _ERROR, "404": _ERROR, "503": _ERROR}
    for more in extra:
        responses.update(more)
    return {"operationId": op_id, "summary": summary, "responses": responses}


_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "operationId": "health",
            "summary": "Whether the server and its database answer",
            "responses": {
                "200": _json(_ref("Health"), "Serving"),
                "503": _json(_ref("Health"), "The database does not answer"),
            },
        }
    },
    "/api/v1/version": {
        "get": {
            "operationId": "version",
            "summary": "API version (ConTest's, 5) and server identity",
            "responses": {"200": _json(_ref("Version"), "Versions")},
        }
    },
    "/api/v1/servers": {
        "get": {
            "operationId": "listServers",
            "summary": "The live servers of this database (heartbeat within their lease), each "
            "with the running jobs it owns",
            "responses": {"200": _json(_ref("ServerList"), "Servers"), "503": _ERROR},
        }
    },
    "/api/v1/jobs": {
        "get": {
            "operationId": "listJobs",
            "summary": "Jobs matching every filter given, by job ID",
            "parameters": [
                _filter("state", "Any of these states.", {"type": "string", "enum": STATES}),
                _filter(
                    "tag",
                    "All of these tags.",
                    {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "maxLength": 32},
                ),
                {
                    "name": "requestor",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1},
                },
                _int_param("limit", 1, 1000, "At most this many jobs (default 100)"),
                {
                    "name": "order",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["asc", "desc"]},
                },
            ],
            "responses": {
                "200": _json(_ref("JobList"), "The jobs"),
                "400": _ERROR,
                "503": _ERROR,
            },
        },
        "post": {
            "operationId": "startJob",
            "summary": "Validate, store and start a job",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewJob")}},
            },
            "responses": {
                "201": _json(_ref("Created"), "Started"),
                "400": _ERROR,
                "413": _ERROR,
                "422": _json(_ref("Error"), "The descriptor was refused; details lists why"),
                "503": _ERROR,
            },
        },
    },
    "/api/v1/jobs/{job_id}": {
        "parameters": [_JOB_ID_PARAM],
        "get": _job_op(
            "getJob",
            "A job's request and state, and the targets it waits for",
            _json(_ref("JobDetail"), "The job"),
        ),
    },
    "/api/v1/jobs/{job_id}/status": {
        "parameters": [_JOB_ID_PARAM],
        "get": _job_op(
            "getJobStatus",
            "ConTest's status document of a job",
            _json(_ref("Status"), "The status"),
            {"409": _ERROR},
        ),
    },
    "/api/v1/jobs/{job_id}/descriptor": {
        "parameters": [_JOB_ID_PARAM],
        "get": _job_op(
            "getJobDescriptor",
            "The descriptor the job was started with",
            _json(_ref("Descriptor"), "The descriptor"),
        ),
    },
    "/api/v1/jobs/{job_id}/report": {
        "parameters": [_JOB_ID_PARAM],
        "get": _job_op(
            "getJobReport", "Every report of a job", _json(_ref("JobReport"), "The reports")
        ),
    },
    "/api/v1/jobs/{job_id}/progress": {
        "parameters": [_JOB_ID_PARAM],
        "get": _job_op(
            "getJobProgress",
            "Targets per step of the latest run: in flight, passed, failed",
            _json(_ref("Progress"), "The progress"),
        ),
    },
    "/api/v1/jobs/{job_id}/events": {
        "parameters": [_JOB_ID_PARAM],
        "get": {
            **_job_op(
                "getJobEvents",
                "A job's events in order, a page at a time",
                _json(_ref("EventPage"), "One page of events"),
            ),
            "parameters": [
                {
                    "name": "kind",
                    "in": "query",
                    "required": False,
                    "description": (
                        "Test events (default) or framework events (job states, runs); the "
                        "run, attempt, test, step and target filters apply to test events only"
                    ),
                    "schema": {"type": "string", "enum": ["test", "framework"]},
                },
                _filter("name", "Any of these event names."),
                _int_param("after", 0, MAX_JOB_ID, "Only events after this sequence number"),
                _int_param("limit", 1, 10000, "At most this many events (default 1000)"),
                _int_param("run", 1, 2**31 - 1, "Test events of this run only"),
                _int_param("attempt", 0, 2**31 - 1, "Test events of this test attempt only"),
                _filter("test", "Test events of any of these tests."),
                _filter("step", "Test events of any of these step labels."),
                _filter("target", "Test events of any of these target IDs."),
            ],
        },
    },
    "/api/v1/jobs/{job_id}/stop": {
        "parameters": [_JOB_ID_PARAM],
        "post": {
            "operationId": "stopJob",
            "summary": "Cancel a job running on this server",
            "responses": {
                "202": _json(_ref("Stopping"), "Cancelling"),
                "400": _ERROR,
                "404": _ERROR,
                "409": _json(_ref("Error"), "The job is not running here"),
                "503": _ERROR,
            },
        },
    },
    "/api/v1/jobs/{job_id}/retry": {
        "parameters": [_JOB_ID_PARAM],
        "post": {
            "operationId": "retryJob",
            "summary": "Start a new job from a job's stored descriptor",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("RetryRequest")}},
            },
            "responses": {
                "201": _json(_ref("Created"), "The new job"),
                "400": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
                "413": _ERROR,
                "503": _ERROR,
            },
        },
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "contest-py REST API",
        "version": __version__,
        "description": (
            "Jobs, their status, events and reports, as JSON. ConTest's own form API "
            "(POST /start /stop /status /retry /list /version) is served beside it. A server "
            "started with --auth-file wants a bearer token on every path (401 without one, "
            "403 for a role that may not; see docs/security.md); one on the loopback address "
            "without it wants none."
        ),
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token made by `contest token create`",
            }
        },
    },
    # a token, or nothing (the open API of a loopback server)
    "security": [{"bearer": []}, {}],
}


def document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change theirs)."""
    return copy.deepcopy(_DOCUMENT)
