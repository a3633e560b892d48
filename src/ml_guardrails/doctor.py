"""``ml-guardrails doctor``: is this account and Region ready for the guardrails? Prints what to fix.

Checks, each printed on one line as OK, WARN, FAIL (something to fix, and how) or ERROR (could not be
checked: never reported OK):

* ``recorder`` -- a customer managed AWS Config configuration recorder exists and is recording
  (DescribeConfigurationRecorders, DescribeConfigurationRecorderStatus);
* ``recording-group`` -- its recording group covers every resource type the catalog's change-triggered
  rules evaluate (``allSupported``, the inclusion list, or everything but the exclusion list); periodic
  rules on ``AWS::::Account`` need no recording. Daily recording of such a type is a WARN: changes reach
  the rules up to a day late;
* ``delivery-channel`` -- a delivery channel exists and no last delivery (history, snapshot, stream) is
  ``Failure`` (DescribeDeliveryChannels, DescribeDeliveryChannelStatus);
* ``rule NAME`` -- every rule of the catalog is deployed (DescribeConfigRules: a rule name equal to
  ``--rule-prefix`` + NAME, or, without it, containing NAME as a whole word, as stacks and conformance
  packs add prefixes and suffixes), ACTIVE, and its last invocation and evaluation succeeded
  (DescribeConfigRuleEvaluationStatus: a LastFailed...Time after the LastSuccessful...Time is a FAIL).

Exit codes: 0 every check OK (or WARN), 1 something to fix, 2 something could not be checked (AccessDenied,
throttling, an unexpected response, no region). The identity needs ``config:DescribeConfigurationRecorders``,
``config:DescribeConfigurationRecorderStatus``, ``config:DescribeDeliveryChannels``,
``config:DescribeDeliveryChannelStatus``, ``config:DescribeConfigRules`` and
``config:DescribeConfigRuleEvaluationStatus`` (all read-only, Resource ``*``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from ml_guardrails.aws import ACCESS_DENIED_CODES, CLIENT_CONFIG, error_code, error_message

if TYPE_CHECKING:
    import boto3

    from ml_guardrails.catalog import RuleSpec

OK, WARN, FAIL, ERROR = "OK", "WARN", "FAIL", "ERROR"
EXIT_OK, EXIT_FIX, EXIT_UNKNOWN = 0, 1, 2
ACCOUNT_TYPE = "AWS::::Account"
# DescribeConfigRuleEvaluationStatus ConfigRuleNames: at most 25 names per call (botocore config model).
STATUS_BATCH = 25
T = TypeVar("T")

__all__ = ["Check", "exit_code", "register", "run_checks"]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    message: str
    fix: str = ""


class CannotCheck(Exception):
    """An AWS read failed or answered unexpectedly; the check it belongs to is reported as ERROR."""

    def __init__(self, operation: str, detail: str, fix: str = "") -> None:
        super().__init__(f"{operation}: {detail}")
        self.operation, self.detail, self.fix = operation, detail, fix


def _call(operation: str, call: Callable[[], T]) -> T:
    """Run one AWS read; any failure becomes :class:`CannotCheck` naming the call and what to grant."""
    try:
        return call()
    except ClientError as exc:
        code = error_code(exc)
        fix = (
            f"grant this identity config:{operation} (read-only, Resource *)"
            if code in ACCESS_DENIED_CODES
            else "retry; if it persists, check the AWS Config service health for this Region"
        )
        raise CannotCheck(operation, f"{code}: {error_message(exc)[:200]}", fix) from exc
    except BotoCoreError as exc:
        raise CannotCheck(operation, f"{type(exc).__name__}: {exc}", "check network and credentials") from exc
    except Exception as exc:  # an emulator gap or a bug: still never reported OK
        raise CannotCheck(operation, f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def _list(response: Any, key: str, operation: str) -> list[Mapping[str, Any]]:
    value = response.get(key) if isinstance(response, Mapping) else None
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise CannotCheck(operation, f"the response has no {key} list")
    return list(value)


# ------------------------------------------------------------------------------------- pure decisions
def needed_types(specs: Iterable[RuleSpec]) -> dict[str, list[str]]:
    """Resource type -> the rules whose change trigger needs it recorded (AWS::::Account needs none)."""
    needed: dict[str, list[str]] = {}
    for spec in specs:
        for rtype in spec.resource_types:
            if rtype != ACCOUNT_TYPE:
                needed.setdefault(rtype, []).append(spec.name)
    return needed


def customer_recorders(recorders: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The customer managed recorders (service-linked ones carry a servicePrincipal and record only what
    their service needs)."""
    return [r for r in recorders if not r.get("servicePrincipal")]


def check_recorder(recorders: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]]) -> Check:
    mine = customer_recorders(recorders)
    if not mine:
        linked = [str(r.get("servicePrincipal")) for r in recorders]
        extra = f" (only service-linked recorders: {', '.join(linked)})" if linked else ""
        return Check(
            "recorder",
            FAIL,
            f"No customer managed AWS Config configuration recorder in this Region{extra}.",
            "create one (PutConfigurationRecorder, or the Config console's 1-click setup), then "
            "StartConfigurationRecorder",
        )
    name = str(mine[0].get("name"))
    status = next((s for s in statuses if s.get("name") == name), None)
    if status is None:
        raise CannotCheck("DescribeConfigurationRecorderStatus", f"no status for recorder {name}")
    if status.get("recording") is not True:
        return Check(
            "recorder",
            FAIL,
            f"Configuration recorder {name} exists but is not recording: the rules see no change.",
            f"aws configservice start-configuration-recorder --configuration-recorder-name {name}",
        )
    last = str(status.get("lastStatus") or "")
    if last.lower() == "failure":
        error = f"{status.get('lastErrorCode') or ''} {status.get('lastErrorMessage') or ''}".strip()
        return Check(
            "recorder",
            FAIL,
            f"Configuration recorder {name} is recording but its last recording failed: "
            f"{error or 'no detail'}.",
            "check the recorder's IAM role (roleARN) and its permissions, then watch lastStatus",
        )
    return Check(
        "recorder", OK, f"Configuration recorder {name} is recording (last status {last or 'unknown'})."
    )


def recorded_types(group: Mapping[str, Any], needed: Iterable[str]) -> tuple[set[str], str]:
    """Which of ``needed`` the recording group records, and how it selects types (pure)."""
    strategy = (group.get("recordingStrategy") or {}).get("useOnly")
    included = set(group.get("resourceTypes") or [])
    excluded = set((group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or [])
    wanted = set(needed)
    if strategy == "ALL_SUPPORTED_RESOURCE_TYPES" or (strategy is None and group.get("allSupported") is True):
        return wanted, "all supported resource types"
    if strategy == "EXCLUSION_BY_RESOURCE_TYPES":
        return wanted - excluded, f"all but {len(excluded)} excluded resource types"
    if strategy in (None, "INCLUSION_BY_RESOURCE_TYPES"):
        return wanted & included, f"{len(included)} listed resource types"
    return set(), f"unknown recording strategy {strategy!r}"


def daily_types(recorder: Mapping[str, Any], types: Iterable[str]) -> list[str]:
    """Of ``types``, those recorded daily rather than continuously (recordingMode and its overrides)."""
    mode = recorder.get("recordingMode") or {}
    default = mode.get("recordingFrequency") or "CONTINUOUS"
    frequency = dict.fromkeys(types, default)
    for override in mode.get("recordingModeOverrides") or []:
        for rtype in override.get("resourceTypes") or []:
            if rtype in frequency:
                frequency[rtype] = override.get("recordingFrequency") or default
    return sorted(t for t, f in frequency.items() if f == "DAILY")


def check_recording_group(recorder: Mapping[str, Any], needed: Mapping[str, list[str]]) -> list[Check]:
    if not needed:
        return [Check("recording-group", OK, "No rule of the catalog needs a recorded resource type.")]
    group = recorder.get("recordingGroup")
    if not isinstance(group, Mapping):
        raise CannotCheck("DescribeConfigurationRecorders", "the recorder has no recordingGroup")
    covered, how = recorded_types(group, needed)
    missing = sorted(set(needed) - covered)
    checks: list[Check] = []
    if missing:
        rules = sorted({r for t in missing for r in needed[t]})
        checks.append(
            Check(
                "recording-group",
                FAIL,
                f"The recorder records {how} but not {', '.join(missing)}: changes to them never reach "
                f"{', '.join(rules)}.",
                "add them to the recording group (PutConfigurationRecorder recordingGroup.resourceTypes, or "
                "remove them from exclusionByResourceTypes)",
            )
        )
    else:
        checks.append(
            Check("recording-group", OK, f"The recorder records {how}, covering {', '.join(sorted(needed))}.")
        )
    daily = daily_types(recorder, covered)
    if daily:
        checks.append(
            Check(
                "recording-mode",
                WARN,
                f"{', '.join(daily)} recorded DAILY: their changes reach the rules up to a day late.",
                "record them CONTINUOUS (recordingMode / recordingModeOverrides) for timely detection",
            )
        )
    return checks


def check_delivery(channels: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]]) -> Check:
    if not channels:
        return Check(
            "delivery-channel",
            FAIL,
            "No AWS Config delivery channel in this Region: the recorder cannot start and nothing is "
            "delivered.",
            "create one (PutDeliveryChannel with an S3 bucket Config may write to)",
        )
    name = str(channels[0].get("name"))
    status = next((s for s in statuses if s.get("name") == name), None)
    if status is None:
        raise CannotCheck("DescribeDeliveryChannelStatus", f"no status for delivery channel {name}")
    failed: list[str] = []
    for key, label in (
        ("configHistoryDeliveryInfo", "history"),
        ("configSnapshotDeliveryInfo", "snapshot"),
        ("configStreamDeliveryInfo", "stream"),
    ):
        info = status.get(key) or {}
        if str(info.get("lastStatus") or "").lower() == "failure":
            failed.append(f"{label} ({info.get('lastErrorCode') or 'no error code'})")
    if failed:
        return Check(
            "delivery-channel",
            FAIL,
            f"Delivery channel {name}: last delivery failed for {', '.join(failed)}.",
            "check the S3 bucket policy / SNS topic policy and KMS key policy allow AWS Config to deliver",
        )
    return Check("delivery-channel", OK, f"Delivery channel {name} exists; no last delivery failed.")


def matching_rules(
    name: str, deployed: Sequence[Mapping[str, Any]], prefix: str | None
) -> list[Mapping[str, Any]]:
    """The deployed rules that are the catalog rule ``name``."""
    if prefix is not None:
        return [r for r in deployed if r.get("ConfigRuleName") == prefix + name]
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
    return [r for r in deployed if word.search(str(r.get("ConfigRuleName") or ""))]


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def check_rule_status(catalog_name: str, rule: Mapping[str, Any], status: Mapping[str, Any] | None) -> Check:
    """One deployed rule's state and last invocation/evaluation (pure)."""
    deployed = str(rule.get("ConfigRuleName"))
    label = f"rule {catalog_name}"
    state = rule.get("ConfigRuleState")
    if state not in ("ACTIVE", "EVALUATING"):
        return Check(label, FAIL, f"{deployed} is {state}, not ACTIVE.", "redeploy the rule (sam deploy)")
    if status is None:
        return Check(
            label,
            WARN,
            f"{deployed} is {state} but AWS Config reports no evaluation status yet.",
            "wait, then rerun",
        )
    error = (
        f"{status.get('LastErrorCode') or 'no error code'}: {status.get('LastErrorMessage') or 'no message'}"
    )
    for kind in ("Invocation", "Evaluation"):
        failed = _time(status.get(f"LastFailed{kind}Time"))
        succeeded = _time(status.get(f"LastSuccessful{kind}Time"))
        if failed is not None and (succeeded is None or failed > succeeded):
            when = failed.isoformat(timespec="seconds")
            return Check(
                label,
                FAIL,
                f"{deployed}: last {kind.lower()} failed at {when} ({error[:160]}).",
                "read the function's CloudWatch logs and the failed-evaluations queue; fix the cause "
                "(permissions, parameters), then re-evaluate the rule",
            )
    last = _time(status.get("LastSuccessfulInvocationTime"))
    if last is None or status.get("FirstEvaluationStarted") is False:
        return Check(
            label,
            WARN,
            f"{deployed} has not completed an evaluation yet.",
            f"aws configservice start-config-rules-evaluation --config-rule-names {deployed}",
        )
    return Check(
        label,
        OK,
        f"{deployed} is {state}; last invocation succeeded at {last.isoformat(timespec='seconds')}.",
    )


# ----------------------------------------------------------------------------------------------- I/O
def _paginate(client: Any, method: str, key: str, operation: str, **kwargs: Any) -> list[Mapping[str, Any]]:
    items: list[Mapping[str, Any]] = []
    token: str | None = None
    while True:
        args = dict(kwargs, NextToken=token) if token else dict(kwargs)
        response = _call(operation, lambda a=args: getattr(client, method)(**a))  # type: ignore[misc]
        items.extend(_list(response, key, operation))
        token = response.get("NextToken")
        if not token:
            return items


def _guard(name: str, body: Callable[[], list[Check]]) -> list[Check]:
    """Run one group of checks; what could not be read is an ERROR line, never OK."""
    try:
        return body()
    except CannotCheck as exc:
        return [Check(name, ERROR, f"Could not check: {exc.operation} failed ({exc.detail}).", exc.fix)]


def run_checks(
    session: boto3.Session,
    region: str | None = None,
    specs: Sequence[RuleSpec] | None = None,
    rule_prefix: str | None = None,
) -> list[Check]:
    """Every check for the session's account in ``region`` (default: the session's)."""
    if specs is None:
        from ml_guardrails import catalog

        specs = catalog.discover()
    config = session.client("config", region_name=region or session.region_name, config=CLIENT_CONFIG)
    checks: list[Check] = []
    recorder_holder: list[Mapping[str, Any]] = []

    def recorder_checks() -> list[Check]:
        recorders = _list(
            _call("DescribeConfigurationRecorders", config.describe_configuration_recorders),
            "ConfigurationRecorders",
            "DescribeConfigurationRecorders",
        )
        mine = customer_recorders(recorders)
        if not mine:
            return [check_recorder(recorders, [])]
        recorder_holder.append(mine[0])
        statuses = _list(
            _call(
                "DescribeConfigurationRecorderStatus",
                lambda: config.describe_configuration_recorder_status(
                    ConfigurationRecorderNames=[str(mine[0].get("name"))]
                ),
            ),
            "ConfigurationRecordersStatus",
            "DescribeConfigurationRecorderStatus",
        )
        return [check_recorder(recorders, statuses)]

    checks.extend(_guard("recorder", recorder_checks))
    needed = needed_types(specs)
    if recorder_holder:
        checks.extend(_guard("recording-group", lambda: check_recording_group(recorder_holder[0], needed)))
    elif checks and checks[-1].status == ERROR:
        checks.append(
            Check(
                "recording-group", ERROR, "Could not check: the recorder could not be read.", checks[-1].fix
            )
        )
    elif needed:
        checks.append(
            Check(
                "recording-group",
                FAIL,
                f"Nothing records {', '.join(sorted(needed))}: no customer managed recorder.",
                "create the recorder (see above) recording these types",
            )
        )

    def delivery_checks() -> list[Check]:
        channels = _list(
            _call("DescribeDeliveryChannels", config.describe_delivery_channels),
            "DeliveryChannels",
            "DescribeDeliveryChannels",
        )
        if not channels:
            return [check_delivery([], [])]
        statuses = _list(
            _call(
                "DescribeDeliveryChannelStatus",
                lambda: config.describe_delivery_channel_status(
                    DeliveryChannelNames=[str(channels[0].get("name"))]
                ),
            ),
            "DeliveryChannelsStatus",
            "DescribeDeliveryChannelStatus",
        )
        return [check_delivery(channels, statuses)]

    checks.extend(_guard("delivery-channel", delivery_checks))
    checks.extend(_rule_checks(config, specs, rule_prefix))
    return checks


def _rule_checks(config: Any, specs: Sequence[RuleSpec], prefix: str | None) -> list[Check]:
    try:
        deployed = _paginate(config, "describe_config_rules", "ConfigRules", "DescribeConfigRules")
    except CannotCheck as exc:
        return [
            Check(
                f"rule {s.name}", ERROR, f"Could not check: {exc.operation} failed ({exc.detail}).", exc.fix
            )
            for s in specs
        ]
    matches = {s.name: matching_rules(s.name, deployed, prefix) for s in specs}
    names = sorted({str(r.get("ConfigRuleName")) for found in matches.values() for r in found})
    statuses: dict[str, Mapping[str, Any]] = {}
    status_error: CannotCheck | None = None
    try:
        for start in range(0, len(names), STATUS_BATCH):
            for entry in _paginate(
                config,
                "describe_config_rule_evaluation_status",
                "ConfigRulesEvaluationStatus",
                "DescribeConfigRuleEvaluationStatus",
                ConfigRuleNames=names[start : start + STATUS_BATCH],
            ):
                statuses[str(entry.get("ConfigRuleName"))] = entry
    except CannotCheck as exc:
        status_error = exc
    checks: list[Check] = []
    for spec in specs:
        label = f"rule {spec.name}"
        found = matches[spec.name]
        if not found:
            how = f"named {prefix}{spec.name}" if prefix is not None else f"whose name contains {spec.name}"
            checks.append(
                Check(
                    label,
                    FAIL,
                    f"Not deployed: no AWS Config rule {how} in this Region.",
                    "deploy it (sam deploy, or the conformance pack); if it is deployed under another name, "
                    "pass --rule-prefix",
                )
            )
            continue
        for rule in found:
            if status_error is not None:
                checks.append(
                    Check(
                        label,
                        ERROR,
                        f"{rule.get('ConfigRuleName')} is deployed; could not check its last evaluation: "
                        f"{status_error.operation} failed ({status_error.detail}).",
                        status_error.fix,
                    )
                )
            else:
                checks.append(
                    check_rule_status(spec.name, rule, statuses.get(str(rule.get("ConfigRuleName"))))
                )
    return checks


# ----------------------------------------------------------------------------------------------- output
def exit_code(checks: Iterable[Check]) -> int:
    """2 when anything could not be checked, else 1 when anything must be fixed, else 0."""
    seen = {c.status for c in checks}
    if ERROR in seen:
        return EXIT_UNKNOWN
    return EXIT_FIX if FAIL in seen else EXIT_OK


def render_text(checks: Sequence[Check], out: IO[str]) -> None:
    width = max((len(c.name) for c in checks), default=8)
    for check in checks:
        out.write(f"{check.status:<5} {check.name:<{width}}  {check.message}\n")
        if check.fix and check.status != OK:
            out.write(f"{'':<5} {'':<{width}}  fix: {check.fix}\n")


def register(subparsers: Any) -> None:
    """Add the ``doctor`` command to an argparse ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "doctor",
        help="check that AWS Config and the guardrail rules are ready in an account and Region",
        description="Check the Config recorder, its recording group, the delivery channel, and that every "
        "rule of the catalog is deployed and last evaluated without error. Exit 0 all OK, 1 something to "
        "fix, 2 something could not be checked.",
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    parser.add_argument(
        "--rule-prefix",
        default=None,
        help="deployed rule names are this prefix + the catalog name (default: match names containing it)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=cmd_doctor)


def cmd_doctor(
    args: argparse.Namespace,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    session: boto3.Session | None = None,
) -> int:
    """The ``doctor`` command's handler; returns the exit code. ``session`` defaults to the standard
    credential chain (``--profile``, ``--region``)."""
    import boto3

    out = out or sys.stdout
    err = err or sys.stderr
    if session is None:
        try:
            session = boto3.Session(region_name=args.region, profile_name=args.profile)
        except BotoCoreError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_UNKNOWN
    region = args.region or session.region_name
    if not region:
        err.write("error: no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION\n")
        return EXIT_UNKNOWN
    checks = run_checks(session, region=region, rule_prefix=args.rule_prefix)
    code = exit_code(checks)
    if args.format == "json":
        json.dump({"region": region, "exit_code": code, "checks": [asdict(c) for c in checks]}, out, indent=2)
        out.write("\n")
    else:
        render_text(checks, out)
    return code
