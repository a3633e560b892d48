"""Fault injection for tests: record the API calls a rule makes, then replay the run with one fault.

:class:`FaultInjector` hooks a ``boto3.Session``'s event system (every client the engine builds from the
session inherits the hooks):

* ``provide-client-params`` numbers each call and keys it by service, operation, parameters and
  occurrence, so the same call can be found again in a later run of the same landscape;
* ``before-call`` tags the request with that number (a header) and can short-circuit the call with a
  parsed response (a response lacking a field, an emptied describe);
* ``after-call`` records the parsed response or error code;
* ``before-send`` (registered *first*, ahead of moto's own handler) counts every HTTP attempt and can
  answer it with a protocol-correct error response (:func:`error_response`) or raise a connection
  error. Faults made there go through botocore's parser and its standard retry handler exactly as a
  real AWS answer would: throttling and 5xx are retried up to ``max_attempts``, AccessDenied is not.

:func:`no_backoff` makes botocore's retry backoff return 0 (recording the delay it would have slept), so a
fault that outlives five attempts costs no wall time. :func:`track_reads` wraps a parsed response so the
fields the code reads are recorded: those are the fields a "missing field" fault removes.

Error codes and HTTP statuses per service follow the services' documentation: S3 "Error responses"
(https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html), EC2 "Error codes"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), KMS and SageMaker API
references (common errors, https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html), STS
(query protocol). Body shapes are the ones botocore's parsers read for each protocol
(``botocore/parsers.py``).
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import standard

CALL_HEADER = "x-ml-guardrails-call"

# ------------------------------------------------------------------------------------------ error codes
# service -> (code, HTTP status) for each fault kind. Services not listed use the JSON-protocol defaults.
ACCESS_DENIED = {
    "s3": ("AccessDenied", 403),
    "ec2": ("UnauthorizedOperation", 403),
    "sts": ("AccessDenied", 403),
    "kms": ("AccessDeniedException", 400),
    "sagemaker": ("AccessDeniedException", 400),
    "config": ("AccessDeniedException", 400),
}
THROTTLED = {
    "s3": ("SlowDown", 503),
    "ec2": ("RequestLimitExceeded", 503),
    "sts": ("Throttling", 400),
    "kms": ("ThrottlingException", 400),
    "sagemaker": ("ThrottlingException", 400),
    "config": ("ThrottlingException", 400),
}
INTERNAL_ERROR = {
    "s3": ("InternalError", 500),
    "ec2": ("InternalError", 500),
    "sts": ("InternalFailure", 500),
    "kms": ("KMSInternalException", 500),
    "sagemaker": ("InternalFailure", 500),
    "config": ("InternalFailure", 500),
}
UNAVAILABLE = {
    "s3": ("ServiceUnavailable", 503),
    "ec2": ("Unavailable", 503),
    "sts": ("ServiceUnavailable", 503),
    "kms": ("ServiceUnavailable", 503),
    "sagemaker": ("ServiceUnavailable", 503),
    "config": ("ServiceUnavailable", 503),
}
# (service, request parameter naming the resource) -> the service's "it does not exist" answer.
NOT_FOUND = {
    ("s3", "Bucket"): ("NoSuchBucket", 404, "The specified bucket does not exist"),
    ("kms", "KeyId"): ("NotFoundException", 400, "Key does not exist"),
    # SageMaker has no NotFound code for notebooks: DescribeNotebookInstance answers ValidationException
    # "RecordNotFound" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html).
    ("sagemaker", "NotebookInstanceName"): ("ValidationException", 400, "RecordNotFound"),
    ("sagemaker", "ResourceArn"): ("ValidationException", 400, "RecordNotFound"),
    ("ec2", "SubnetIds"): ("InvalidSubnetID.NotFound", 400, "The subnet ID does not exist"),
    ("ec2", "VpcIds"): ("InvalidVpcID.NotFound", 400, "The vpc ID does not exist"),
    ("ec2", "RouteTableIds"): ("InvalidRouteTableID.NotFound", 400, "The routeTable ID does not exist"),
}


def _code(table: Mapping[str, tuple[str, int]], service: str, default: tuple[str, int]) -> tuple[str, int]:
    return table.get(service, default)


# --------------------------------------------------------------------------------------- error bodies
class _RawBody:
    """The ``raw`` of an :class:`AWSResponse`: botocore reads ``raw.stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_response(protocol: str, code: str, message: str, status: int, url: str = "") -> AWSResponse:
    """An HTTP error response as the service's protocol sends it, for botocore to parse and retry.

    json (KMS, SageMaker, Config): ``{"__type": code, "message": ...}``; query (STS):
    ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``; ec2:
    ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``; rest-xml (S3):
    ``<Error><Code/><Message/><RequestId/></Error>``; rest-json: the code in ``x-amzn-errortype``.
    """
    request_id = str(uuid.UUID(int=random.Random(code + message).getrandbits(128)))
    msg = _xml_escape(message)
    headers: dict[str, str] = {"x-amzn-requestid": request_id}
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["content-type"] = "application/x-amz-json-1.1"
    elif protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers["content-type"] = "application/json"
        headers["x-amzn-errortype"] = code
    elif protocol == "query":
        sender = "Receiver" if status >= 500 else "Sender"
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>{sender}</Type><Code>{code}</Code><Message>{msg}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers["content-type"] = "text/xml"
    elif protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers["content-type"] = "text/xml;charset=UTF-8"
    elif protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>{request_id}</RequestId>"
            "<HostId>ml-guardrails-fault-injection</HostId></Error>"
        ).encode()
        headers["content-type"] = "application/xml"
        headers["x-amz-request-id"] = request_id
    else:  # pragma: no cover - a new protocol needs its error shape here
        raise NotImplementedError(f"no error body for protocol {protocol}")
    headers["content-length"] = str(len(body))
    return AWSResponse(url, status, headers, _RawBody(body))


# ----------------------------------------------------------------------------------------------- faults
@dataclass(frozen=True)
class Fault:
    """One fault. ``kind``: ``error`` (an HTTP error answer on every attempt), ``raise`` (a connection
    error raised on every attempt), ``response`` (a parsed response instead of the call)."""

    name: str
    kind: str
    code: str = ""
    status: int = 0
    message: str = ""
    exception: type[Exception] | None = None
    response: Mapping[str, Any] | None = None
    make: Callable[[], Any] | None = None
    retryable: bool = False

    def answer(self, protocol: str, url: str) -> AWSResponse:
        return error_response(protocol, self.code, self.message, self.status, url)


def error_faults(service: str) -> list[Fault]:
    """AccessDenied, throttling, 5xx and connection faults for ``service``, each repeated on every
    attempt (so a retryable one outlives botocore's retries)."""
    faults = []
    for name, table, default, retryable in (
        ("access-denied", ACCESS_DENIED, ("AccessDeniedException", 400), False),
        ("throttled", THROTTLED, ("ThrottlingException", 400), True),
        ("internal-error", INTERNAL_ERROR, ("InternalFailure", 500), True),
        ("unavailable", UNAVAILABLE, ("ServiceUnavailable", 503), True),
    ):
        code, status = _code(table, service, default)
        message = f"injected {code} ({name})"
        faults.append(Fault(name, "error", code, status, message, retryable=retryable))
    for exc in (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError):
        faults.append(Fault(exc.__name__, "raise", exc.__name__, exception=exc, retryable=True))
    return faults


def not_found_fault(service: str, params: Mapping[str, Any]) -> tuple[Fault, str] | None:
    """The service's own not-found answer for a call naming a resource, with the parameter's value."""
    for (svc, name), (code, status, message) in NOT_FOUND.items():
        value = params.get(name) if svc == service else None
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and value:
            return Fault("gone", "error", code, status, f"{message} ({value})"), value
    return None


def emptied(response: Mapping[str, Any]) -> dict[str, Any]:
    """``response`` with every top-level list emptied: what a filtered describe answers once the
    resources it filters on are deleted (EC2 filters never raise NotFound)."""
    result: dict[str, Any] = plain(response)
    for key, value in result.items():
        if isinstance(value, list):
            result[key] = []
    return result


# ---------------------------------------------------------------------------------------- read tracking
Path = tuple[str, ...]


class TrackedDict(dict[str, Any]):
    """A dict recording which keys were read (``[]``, ``get``, ``in`` on a present key). List elements
    share one path with ``*`` for the index."""

    _path: Path
    _reads: set[Path]

    def _hit(self, key: Any) -> None:
        if isinstance(key, str) and dict.__contains__(self, key):
            self._reads.add((*self._path, key))

    def __getitem__(self, key: Any) -> Any:
        self._hit(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._hit(key)
        return dict.get(self, key, default)

    def __contains__(self, key: Any) -> bool:
        self._hit(key)
        return dict.__contains__(self, key)


def track_reads(value: Any, reads: set[Path], path: Path = ()) -> Any:
    """``value`` (a parsed response) with every dict replaced by a :class:`TrackedDict` feeding ``reads``."""
    if isinstance(value, Mapping):
        tracked = TrackedDict({k: track_reads(v, reads, (*path, str(k))) for k, v in value.items()})
        tracked._path, tracked._reads = path, reads
        return tracked
    if isinstance(value, list):
        return [track_reads(v, reads, (*path, "*")) for v in value]
    return value


def plain(value: Any) -> Any:
    """A deep copy with plain dicts and lists (reading a :class:`TrackedDict` this way records nothing)."""
    if isinstance(value, Mapping):
        return (
            {k: plain(v) for k, v in dict.items(value)}
            if isinstance(value, dict)
            else {k: plain(value[k]) for k in value}
        )
    if isinstance(value, list):
        return [plain(v) for v in value]
    return copy.deepcopy(value)


def without(response: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """A deep copy of ``response`` lacking the field at ``path`` (in every element of a list on the way)."""
    result: dict[str, Any] = plain(response)

    def drop(node: Any, rest: Path) -> None:
        if isinstance(node, list):
            for item in node:
                drop(item, rest)
        elif isinstance(node, dict) and rest:
            head, tail = rest[0], rest[1:]
            if not tail:
                node.pop(head, None)
            elif head == "*":
                drop(node, tail)
            elif head in node:
                drop(node[head], tail)

    drop(result, path)
    return result


def leaf_reads(reads: set[Path]) -> list[Path]:
    """The read paths a "missing field" fault removes, sorted: every field read, containers included
    (``KeyMetadata`` as well as ``KeyMetadata.KeyState``), except ``ResponseMetadata``."""
    kept = []
    for path in sorted(reads):
        if not path or path[0] == "ResponseMetadata":
            continue
        kept.append(path)
    return kept


# ------------------------------------------------------------------------------------------- recording
@dataclass
class Call:
    """One API call as recorded: which resource the rule was evaluating when it made it."""

    index: int
    service: str
    operation: str
    params: dict[str, Any]
    key: tuple[str, str, str, int]
    resource: str | None
    outcomes_before: int
    status: int | None = None
    error_code: str | None = None
    response: dict[str, Any] | None = None
    attempts: int = 0

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


class _FakeHttp:
    """The minimal HTTP response botocore accepts from a ``before-call`` handler."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


class FaultInjector:
    """Records every API call made through ``session`` and injects faults into chosen calls.

    ``faults`` maps a call key to the fault for that call; ``attempt_fault`` (optional) decides per HTTP
    attempt, for random faults. ``current_resource``/``outcomes`` are kept by :meth:`attribute`.
    """

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.calls: list[Call] = []
        self.faults: dict[tuple[str, str, str, int], Fault] = {}
        self.attempt_fault: Callable[[Call, int], Fault | None] | None = None
        self.injected: Counter[str] = Counter()
        self.current_resource: str | None = None
        self.outcomes = 0
        self._occurrences: Counter[tuple[str, str, str]] = Counter()
        events = session.events
        events.register("provide-client-params", self._on_params)
        events.register("before-call", self._on_before_call)
        events.register("after-call", self._on_after_call)
        events.register_first("before-send", self._on_before_send)

    def reset(self) -> None:
        self.calls = []
        self.faults = {}
        self.attempt_fault = None
        self.injected = Counter()
        self.current_resource = None
        self.outcomes = 0
        self._occurrences = Counter()

    # -- attribution -----------------------------------------------------------------------------
    @contextmanager
    def attribute(self, module: ModuleType) -> Iterator[None]:
        """Attribute calls to the resource being evaluated: wraps ``module.guarded`` (the engine's
        per-resource guard every sweep uses) for the duration."""
        original = module.guarded

        def guarded(resource_type: str, resource_id: str, decide: Any, gone: Any = ()) -> Any:
            previous, self.current_resource = self.current_resource, resource_id
            try:
                return original(resource_type, resource_id, decide, gone=gone)
            finally:
                self.current_resource = previous
                self.outcomes += 1

        module.guarded = guarded
        try:
            yield
        finally:
            module.guarded = original

    # -- hooks -----------------------------------------------------------------------------------
    def _on_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        canonical = json.dumps(params, sort_keys=True, default=str)
        base = (service, model.name, canonical)
        self._occurrences[base] += 1
        call = Call(
            index=len(self.calls),
            service=service,
            operation=model.name,
            params=copy.deepcopy(params),
            key=(*base, self._occurrences[base]),
            resource=self.current_resource,
            outcomes_before=self.outcomes,
        )
        self.calls.append(call)
        context["ml_guardrails_call"] = call.index

    def _call(self, context: Mapping[str, Any]) -> Call | None:
        index = context.get("ml_guardrails_call")
        return self.calls[index] if isinstance(index, int) and index < len(self.calls) else None

    def _on_before_call(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        call = self._call(context)
        if call is None:
            return None
        params.setdefault("headers", {})[CALL_HEADER] = str(call.index)
        fault = self.faults.get(call.key)
        if fault is not None and fault.kind == "response":
            self.injected[fault.name] += 1
            call.attempts += 1
            body = fault.make() if fault.make is not None else plain(fault.response or {})
            return _FakeHttp(200), body
        return None

    def _on_after_call(self, http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        call = self._call(context)
        if call is None:
            return
        call.status = getattr(http_response, "status_code", None)
        response = plain(parsed)
        if call.status is not None and call.status >= 300:
            call.error_code = str((response.get("Error") or {}).get("Code"))
        else:
            call.response = response

    def _on_before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        raw_index = request.headers.get(CALL_HEADER)
        if raw_index is None:
            return None
        index = int(raw_index.decode() if isinstance(raw_index, bytes) else raw_index)
        call = self.calls[index]
        call.attempts += 1
        fault = self.faults.get(call.key)
        if fault is None and self.attempt_fault is not None:
            fault = self.attempt_fault(call, call.attempts)
        if fault is None or fault.kind == "response":
            return None
        self.injected[fault.name] += 1
        if fault.kind == "raise":
            assert fault.exception is not None
            if fault.exception is ReadTimeoutError or fault.exception is ConnectTimeoutError:
                raise fault.exception(endpoint_url=request.url, error="injected timeout")
            raise fault.exception(endpoint_url=request.url)
        protocol = self.session._session.get_service_model(call.service).resolved_protocol
        return fault.answer(protocol, request.url)


# ---------------------------------------------------------------------------------------------- backoff
@dataclass
class Backoff:
    """The delays botocore's standard retry handler computed (and did not sleep)."""

    delays: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.delays)


def no_backoff(monkeypatch: pytest.MonkeyPatch) -> Backoff:
    """Make botocore's standard-mode backoff return 0 (``time.sleep(0)``), recording what it computed."""
    record = Backoff()
    original = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: standard.ExponentialBackoff, context: Any) -> float:
        record.delays.append(float(original(self, context)))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    return record
