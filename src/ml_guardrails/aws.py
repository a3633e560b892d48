"""AWS I/O plumbing shared by every rule: one client configuration, one client factory, error helpers.

Every rule builds its clients through :class:`ClientFactory`, so retries, timeouts and (for
cross-account evaluation) the assumed role are decided here once. Clients are never built at import
time: a Lambda cold start pays only for what an invocation uses.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# Bounded retries: botocore's "standard" mode retries throttling and transient 5xx/connection errors with
# exponential backoff and jitter; 5 attempts in all (1 + 4 retries; ``total_max_attempts`` counts the first
# attempt, ``max_attempts`` would not) keeps a throttled call inside the Lambda timeout. Timeouts are
# explicit so a hung connection becomes a fault we report, not a silent Lambda timeout.
MAX_ATTEMPTS = 5
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="ml-guardrails",
)

# The session name AWS Config's own custom-rule libraries use; it appears in the member's CloudTrail.
ROLE_SESSION_NAME = "ml-guardrails-evaluation"
ASSUME_ROLE_SECONDS = 900

ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "Forbidden",
    }
)


class ClientFactory:
    """Builds boto3 clients for one invocation (or one CLI scan), with :data:`CLIENT_CONFIG`.

    Compatible with rdklib's ``ClientFactory.build_client(service, region=None, assume_role_mode=True)``
    so rules written against rdklib keep working. Differences, all deliberate:

    * the assumed role's credentials and every client are cached per factory (one client per service and
      region, not one per call);
    * the STS call has no bare ``except`` fallback to the global endpoint: a failure to assume the
      execution role is a failure, reported with the parameter names that fix it;
    * a ``boto3.Session`` may be injected (the CLI uses the standard credential chain, tests use moto);
    * ``credentials`` already obtained elsewhere may be injected (the CLI's multi-account scan assumes each
      account's role once and gives every worker thread its own factory): every client of the factory is
      then built with them, whatever ``assume_role_mode`` says, and no role is assumed here.
    """

    def __init__(
        self,
        role_arn: str | None = None,
        region: str | None = None,
        assume_role_mode: bool = True,
        session: boto3.Session | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.role_arn = role_arn
        self.region = (
            region
            or (session.region_name if session is not None else None)
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        self.assume_role_mode = assume_role_mode
        self._session = session
        self._assumed: dict[str, str] | None = dict(credentials) if credentials is not None else None
        self._fixed_credentials = credentials is not None
        self._clients: dict[tuple[str, str | None, bool], Any] = {}
        self._lock = threading.Lock()

    def _base_session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session()
        return self._session

    def _assumed_credentials(self) -> dict[str, str]:
        """Credentials of the execution role, assumed once per factory. Clients are then built from the
        base session with these credentials, so the session's configuration and event hooks apply."""
        if self._assumed is not None:
            return self._assumed
        if not self.role_arn:
            raise ValueError(
                "No execution role ARN to assume: set AssumeRoleMode to false to use the function's own "
                "role, or provide the event's executionRoleArn / the ExecutionRoleName parameter."
            )
        sts = self._base_session().client("sts", region_name=self.region, config=CLIENT_CONFIG)
        try:
            creds = sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName=ROLE_SESSION_NAME,
                DurationSeconds=ASSUME_ROLE_SECONDS,
            )["Credentials"]
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED_CODES:
                exc.response["Error"]["Message"] = (
                    f"Cannot assume {self.role_arn}: let the rule's function role assume it (trust policy "
                    "and sts:AssumeRole), name another role with the ExecutionRoleName parameter, or set "
                    "AssumeRoleMode to false to use the function's own role. AWS said: " + error_message(exc)
                )
            raise
        self._assumed = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        return self._assumed

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        """A cached boto3 client for ``service`` in ``region`` (default: the factory's region)."""
        region = region or self.region
        assume = bool(assume_role_mode and self.assume_role_mode) or self._fixed_credentials
        key = (service, region, assume)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                credentials = self._assumed_credentials() if assume else {}
                client = cast("Any", self._base_session()).client(
                    service, region_name=region, config=CLIENT_CONFIG, **credentials
                )
                client.meta.events.register("after-call-error", _remember_operation)
                self._clients[key] = client
            return client


def _remember_operation(exception: BaseException, event_name: str = "", **_: Any) -> None:
    """Connection errors and timeouts do not say which call failed; record it on the exception."""
    if not isinstance(exception, ClientError):
        exception.ml_guardrails_operation = event_name.rsplit(".", 1)[-1]  # type: ignore[attr-defined]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "Unknown")
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or exc)
    return str(exc) or type(exc).__name__


def error_operation(exc: BaseException) -> str | None:
    """The API operation that failed (``DescribeKey``), when the exception knows it."""
    if isinstance(exc, ClientError):
        return exc.operation_name
    remembered = getattr(exc, "ml_guardrails_operation", None)
    if remembered:
        return str(remembered)
    if isinstance(exc, BotoCoreError):
        op = getattr(exc, "kwargs", {}).get("operation_name")
        return str(op) if op else None
    return None


def is_error(exc: BaseException, codes: Iterable[str]) -> bool:
    """True when ``exc`` is a ClientError whose code is one of ``codes``."""
    return isinstance(exc, ClientError) and error_code(exc) in set(codes)
