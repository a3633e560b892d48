"""The fail-closed evaluation engine every rule is built on.

A rule subclasses :class:`GuardrailRule` (an rdklib ``ConfigRule``), declares its name, resource types
and parameters, and implements two things: ``evaluate_item`` (one configuration item, the change path)
and ``sweep`` (every resource of the region, the periodic path). The engine does the rest, once:

* parameters are parsed strictly (:mod:`ml_guardrails.params`);
* ``ExemptionTagKey`` turns a tagged resource NOT_APPLICABLE with the tag's value as the reason;
* every resource that could not be evaluated -- AccessDenied, throttling that outlived the retries, a
  timeout, a malformed configuration item, a bug -- becomes a :class:`Failure`; never COMPLIANT;
* :func:`handle` (the Lambda entry point) posts every evaluation it could decide, checks
  ``FailedEvaluations``, then fails the invocation with one structured error naming each resource that
  could not be evaluated, so Config and CloudWatch show the failure instead of a silent success.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from rdklib import ComplianceType, ConfigRule, Evaluation, InvalidParametersError

from ml_guardrails.aws import ClientFactory, error_code, error_message, error_operation
from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    history_item_to_notification,
    tags_from,
)
from ml_guardrails.params import EXEMPTION_TAG_KEY, Parameter, parse_engine_parameters, parse_parameters

if TYPE_CHECKING:
    import boto3

ANNOTATION_LIMIT = 256
PUT_EVALUATIONS_BATCH = 100
CHANGE_MESSAGE_TYPES = ("ConfigurationItemChangeNotification", "OversizedConfigurationItemChangeNotification")
SCHEDULED = "ScheduledNotification"
ACCOUNT_RESOURCE_TYPE = "AWS::::Account"

P = TypeVar("P")


# --------------------------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Failure:
    """A resource the rule could not evaluate, and why."""

    resource_type: str
    resource_id: str
    operation: str
    code: str
    message: str

    @classmethod
    def from_exception(cls, resource_type: str, resource_id: str, exc: BaseException) -> Failure:
        if isinstance(exc, MalformedConfigurationItem):
            operation, code = exc.operation or "ReadConfigurationItem", "MalformedConfigurationItem"
        else:
            operation = error_operation(exc) or "Evaluate"
            code = error_code(exc)
        message = error_message(exc)
        return cls(resource_type, resource_id, operation, code, message[:500])

    def as_dict(self) -> dict[str, str]:
        return {
            "resourceType": self.resource_type,
            "resourceId": self.resource_id,
            "operation": self.operation,
            "code": self.code,
            "message": self.message,
        }

    def __str__(self) -> str:
        return (
            f"{self.resource_type} {self.resource_id}: "
            f"{self.operation} failed with {self.code}: {self.message}"
        )


Outcome: TypeAlias = "Evaluation | Failure"


class EvaluationIncomplete(Exception):
    """Some resources could not be evaluated. Carries the evaluations that *were* decided."""

    def __init__(
        self, rule_name: str, failures: list[Failure], evaluations: list[Evaluation] | None = None
    ) -> None:
        self.rule_name = rule_name
        self.failures = failures
        self.evaluations = evaluations or []
        shown = [f.as_dict() for f in failures[:20]]
        summary = {
            "error": "EvaluationIncomplete",
            "rule": rule_name,
            "unevaluated": len(failures),
            "evaluated": len(self.evaluations),
            "failures": shown,
            "action": "Fix the cause named for each resource (permissions, throttling, malformed item); "
            "the rule re-evaluates on the next change or sweep.",
        }
        super().__init__(json.dumps(summary, sort_keys=True))


def make_evaluation(
    compliance: str, resource_type: str, resource_id: str, annotation: str = ""
) -> Evaluation:
    """An rdklib Evaluation; annotations longer than Config's 256-character limit are cut (never silently
    dropped: the cut is marked)."""
    if len(annotation) > ANNOTATION_LIMIT:
        annotation = annotation[: ANNOTATION_LIMIT - 3] + "..."
    return Evaluation(compliance, resource_id, resource_type, annotation)


def guarded(
    resource_type: str,
    resource_id: str,
    decide: Callable[[], Evaluation | None],
    gone: Iterable[str] | Callable[[ClientError], bool] = (),
) -> Outcome | None:
    """Run ``decide`` for one resource of a sweep; any exception becomes a :class:`Failure`.

    ``gone`` -- error codes, or a predicate over the ClientError -- says the resource was deleted between
    listing and reading it: such a resource is skipped (AWS Config records the deletion itself).
    """
    is_gone = gone if callable(gone) else (lambda exc, codes=frozenset(gone): error_code(exc) in codes)
    try:
        return decide()
    except (ClientError, BotoCoreError, MalformedConfigurationItem) as exc:
        if isinstance(exc, ClientError) and is_gone(exc):
            return None
        return Failure.from_exception(resource_type, resource_id, exc)
    except Exception as exc:  # a bug must not hide a resource: report it like any other failure
        return Failure.from_exception(resource_type, resource_id, exc)


# ----------------------------------------------------------------------------------------------- params
@dataclass(frozen=True)
class RuleParameters(Generic[P]):
    """Validated parameters: the rule's own (``rule``) and the shared exemption tag key."""

    rule: P
    exemption_tag_key: str | None = None

    def exemption(
        self, resource_type: str, resource_id: str, tags: Mapping[str, str] | None
    ) -> Evaluation | None:
        """NOT_APPLICABLE when the resource carries the exemption tag, else None."""
        key = self.exemption_tag_key
        if not key or not tags or key not in tags:
            return None
        reason = tags[key].strip() or "no reason given"
        return make_evaluation(
            ComplianceType.NOT_APPLICABLE,
            resource_type,
            resource_id,
            f"Exempted by tag {key}: {reason}. Remove the tag to evaluate this resource again.",
        )


# ------------------------------------------------------------------------------------------------- rule
class GuardrailRule(ConfigRule, Generic[P]):  # type: ignore[misc]
    """Base class of every ml-guardrails rule. Subclasses set the class variables and implement
    :meth:`make_params`, :meth:`evaluate_item` and :meth:`sweep`."""

    RULE_NAME: ClassVar[str]
    RESOURCE_TYPES: ClassVar[tuple[str, ...]]
    PARAMETERS: ClassVar[tuple[Parameter, ...]] = ()
    # rdklib's periodic clean-up posts NOT_APPLICABLE for every previously evaluated resource missing from
    # the sweep. Off: our rules are change-triggered too, so Config records deletions itself, and a sweep
    # that could not list everything must never mark the unlisted resources NOT_APPLICABLE.
    delete_old_evaluations_on_scheduled_notification = False

    @classmethod
    def parameter_specs(cls) -> tuple[Parameter, ...]:
        return (*cls.PARAMETERS, EXEMPTION_TAG_KEY)

    # -- to implement -------------------------------------------------------------------------------
    def make_params(self, values: Mapping[str, Any]) -> P:
        """Turn validated values (by parameter name) into the rule's typed parameters; cross-checks here
        raise InvalidParametersError naming the parameter."""
        raise NotImplementedError

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[P]
    ) -> Evaluation:
        """Decide one resource from its configuration item (plus the API reads the facts need)."""
        raise NotImplementedError

    def sweep(self, clients: ClientFactory, params: RuleParameters[P]) -> Iterator[Outcome]:
        """Yield an outcome for every resource of the rule's types in the region (periodic trigger)."""
        raise NotImplementedError

    # -- rdklib interface ---------------------------------------------------------------------------
    def evaluate_parameters(self, rule_parameters: Any) -> RuleParameters[P]:
        values = parse_parameters(self.parameter_specs(), rule_parameters)
        exemption = values.pop(EXEMPTION_TAG_KEY.name)
        return RuleParameters(rule=self.make_params(values), exemption_tag_key=exemption)

    def _params(self, valid_rule_parameters: Any) -> RuleParameters[P]:
        if isinstance(valid_rule_parameters, RuleParameters):
            return valid_rule_parameters
        return self.evaluate_parameters(valid_rule_parameters)

    def evaluate_change(
        self, event: Any, client_factory: ClientFactory, configuration_item: Any, valid_rule_parameters: Any
    ) -> list[Evaluation]:
        params = self._params(valid_rule_parameters)
        item = ConfigurationItem.parse(configuration_item)
        if item.resource_type not in self.RESOURCE_TYPES:
            return [not_applicable(item, f"{self.RULE_NAME} does not evaluate {item.resource_type}.")]
        if not item.applicable_status:
            return [not_applicable(item, f"Configuration item status {item.status}: nothing to evaluate.")]
        tags = dict(tags_from(_config_tags(item)))
        tags.update(item.tags)
        exempt = params.exemption(item.resource_type, item.resource_id, tags)
        if exempt is not None:
            return [exempt]
        return [self.evaluate_item(item, client_factory, params)]

    def evaluate_periodic(
        self, event: Any, client_factory: ClientFactory, valid_rule_parameters: Any
    ) -> list[Evaluation]:
        evaluations, failures = self.run_sweep(client_factory, self._params(valid_rule_parameters))
        if failures:
            raise EvaluationIncomplete(self.RULE_NAME, failures, evaluations)
        return evaluations

    def run_sweep(
        self,
        client_factory: ClientFactory,
        params: RuleParameters[P],
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> tuple[list[Evaluation], list[Failure]]:
        """Every outcome of :meth:`sweep`, split into evaluations and failures. A failure to list (the
        sweep itself raising) is recorded against ``*``: what was not listed is unknown."""
        evaluations: list[Evaluation] = []
        failures: list[Failure] = []
        try:
            for outcome in self.sweep(client_factory, params):
                if isinstance(outcome, Failure):
                    failures.append(outcome)
                else:
                    evaluations.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        except Exception as exc:
            failures.append(Failure.from_exception(", ".join(self.RESOURCE_TYPES), "*", exc))
        return evaluations, failures


def not_applicable(item: ConfigurationItem, reason: str) -> Evaluation:
    return make_evaluation(ComplianceType.NOT_APPLICABLE, item.resource_type, item.resource_id, reason)


def _config_tags(item: ConfigurationItem) -> Any:
    from ml_guardrails.ci import get_field

    return get_field(item.configuration, "Tags")


# ------------------------------------------------------------------------------------------- the handler
def _json_object(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            raise InvalidParametersError(f"{name} is not valid JSON: {exc}") from exc
        if isinstance(decoded, Mapping):
            return dict(decoded)
    raise InvalidParametersError(f"{name} must be a JSON object")


def execution_role_arn(event: Mapping[str, Any], role_name: str | None) -> str | None:
    """The role to assume: ``ExecutionRoleName`` in the event's account (keeping an IAM path if given,
    unlike rdklib, which drops the path), else the event's ``executionRoleArn``."""
    arn = event.get("executionRoleArn")
    if role_name and isinstance(arn, str) and ":role/" in arn:
        return arn.split(":role/")[0] + ":role/" + role_name.lstrip("/")
    return arn if isinstance(arn, str) else None


def _evaluation_json(evaluation: Evaluation, timestamp: str) -> dict[str, Any]:
    if not evaluation.orderingTimestamp:
        evaluation.orderingTimestamp = timestamp
    evaluation.is_valid()
    record: dict[str, Any] = evaluation.get_json()
    record["OrderingTimestamp"] = str(record["OrderingTimestamp"])
    return record


def post_evaluations(
    config_client: Any, evaluations: list[dict[str, Any]], result_token: str
) -> list[Failure]:
    """PutEvaluations in batches of 100, ``TestMode`` for the TESTMODE token; evaluations Config reports
    as failed are retried once, then returned as failures."""
    failures: list[Failure] = []
    # AWS Config's documented test token, not a secret.
    test_mode = result_token == "TESTMODE"  # noqa: S105  # nosec B105
    for start in range(0, len(evaluations), PUT_EVALUATIONS_BATCH):
        batch = evaluations[start : start + PUT_EVALUATIONS_BATCH]
        for attempt in (1, 2):
            try:
                response = config_client.put_evaluations(
                    Evaluations=batch, ResultToken=result_token, TestMode=test_mode
                )
            except (ClientError, BotoCoreError) as exc:
                # Config never received these verdicts: each is a failure of its resource.
                failures.extend(
                    Failure.from_exception(e["ComplianceResourceType"], e["ComplianceResourceId"], exc)
                    for e in batch
                )
                break
            failed = response.get("FailedEvaluations") or []
            if not failed:
                break
            if attempt == 2:
                failures.extend(
                    Failure(
                        str(f.get("ComplianceResourceType")),
                        str(f.get("ComplianceResourceId")),
                        "PutEvaluations",
                        "FailedEvaluation",
                        "AWS Config did not accept the evaluation",
                    )
                    for f in failed
                )
            else:
                keys = {(f.get("ComplianceResourceType"), f.get("ComplianceResourceId")) for f in failed}
                batch = [e for e in batch if (e["ComplianceResourceType"], e["ComplianceResourceId"]) in keys]
                time.sleep(0.2)
    return failures


def _inflate_oversized(invoking_event: Mapping[str, Any], clients: ClientFactory) -> dict[str, Any]:
    summary = invoking_event.get("configurationItemSummary") or {}
    resource_type, resource_id = summary.get("resourceType"), summary.get("resourceId")
    if not resource_type or not resource_id:
        raise MalformedConfigurationItem("oversized notification has no configurationItemSummary resource")
    history = clients.build_client("config").get_resource_config_history(
        resourceType=resource_type, resourceId=resource_id, limit=1
    )
    items = history.get("configurationItems") or []
    if not items:
        raise MalformedConfigurationItem(
            f"no configuration history for oversized {resource_type} {resource_id}"
        )
    return history_item_to_notification(items[0])


def handle(
    rule: GuardrailRule[Any],
    event: Mapping[str, Any],
    context: Any = None,
    *,
    session: boto3.Session | None = None,
) -> list[dict[str, Any]]:
    """The Lambda handler of every rule: evaluate, post, then fail loudly if anything was not evaluated.

    Returns the posted evaluations (JSON-serialisable). Raises :class:`EvaluationIncomplete` after
    posting when any resource could not be evaluated, and InvalidParametersError (nothing evaluated,
    nothing posted) for bad rule parameters.
    """
    from ml_guardrails.observability import emit_metrics, get_logger

    log = get_logger()
    name = rule.RULE_NAME
    log.append_keys(rule=name)
    if not isinstance(event, Mapping) or "invokingEvent" not in event or "resultToken" not in event:
        raise ValueError("not an AWS Config rule event: invokingEvent and resultToken are required")
    invoking_event = _json_object(event["invokingEvent"], "invokingEvent")
    message_type = invoking_event.get("messageType")
    try:
        raw_params = _json_object(event.get("ruleParameters") or {}, "ruleParameters")
        engine = parse_engine_parameters(raw_params)
        params = rule.evaluate_parameters(raw_params)
    except InvalidParametersError as exc:
        log.error("invalid rule parameters; nothing evaluated", extra={"error": str(exc)})
        emit_metrics(name, {"InvalidParameters": 1})
        raise

    clients = ClientFactory(
        role_arn=execution_role_arn(event, engine.execution_role_name),
        region=engine.execution_role_region,
        assume_role_mode=engine.assume_role_mode,
        session=session,
    )
    evaluations: list[Evaluation] = []
    failures: list[Failure] = []
    timestamp = ""
    if message_type in CHANGE_MESSAGE_TYPES:
        summary = invoking_event.get("configurationItem") or invoking_event.get("configurationItemSummary")
        if not isinstance(summary, Mapping):  # parsed (and reported) as malformed below
            summary = {}
        rtype, rid = str(summary.get("resourceType", "?")), str(summary.get("resourceId", "?"))
        try:
            if message_type == CHANGE_MESSAGE_TYPES[1]:
                raw_ci: Any = _inflate_oversized(invoking_event, clients)
            else:
                raw_ci = invoking_event.get("configurationItem")
            item = ConfigurationItem.parse(raw_ci)
            rtype, rid, timestamp = item.resource_type, item.resource_id, item.capture_time
            if event.get("eventLeftScope") in (True, "true", "True"):
                evaluations = [not_applicable(item, "The resource left the rule's scope.")]
            else:
                evaluations = rule.evaluate_change(event, clients, raw_ci, params)
        except Exception as exc:
            failures.append(Failure.from_exception(rtype, rid, exc))
    elif message_type == SCHEDULED:
        timestamp = str(invoking_event.get("notificationCreationTime") or "")
        try:
            evaluations = rule.evaluate_periodic(event, clients, params)
        except EvaluationIncomplete as exc:
            evaluations, failures = exc.evaluations, list(exc.failures)
        except Exception as exc:
            failures.append(Failure.from_exception(", ".join(rule.RESOURCE_TYPES), "*", exc))
    else:
        raise ValueError(f"unexpected messageType {message_type!r}")

    records = [_evaluation_json(e, timestamp) for e in evaluations]
    if records:
        try:
            config = clients.build_client("config")
        except Exception as exc:  # e.g. the execution role cannot be assumed: nothing can be posted
            failures.extend(
                Failure.from_exception(r["ComplianceResourceType"], r["ComplianceResourceId"], exc)
                for r in records
            )
        else:
            failures.extend(post_evaluations(config, records, str(event["resultToken"])))
    counts = Counter(r["ComplianceType"] for r in records)
    for record in records:
        log.info(
            "evaluation",
            extra={
                "resource_type": record["ComplianceResourceType"],
                "resource_id": record["ComplianceResourceId"],
                "compliance": record["ComplianceType"],
                "annotation": record.get("Annotation", ""),
            },
        )
    emit_metrics(
        name,
        {
            "Compliant": counts.get(ComplianceType.COMPLIANT, 0),
            "NonCompliant": counts.get(ComplianceType.NON_COMPLIANT, 0),
            "NotApplicable": counts.get(ComplianceType.NOT_APPLICABLE, 0),
            "EvaluationErrors": len(failures),
        },
    )
    if failures:
        error = EvaluationIncomplete(name, failures, evaluations)
        log.error("resources could not be evaluated", extra={"failures": [f.as_dict() for f in failures]})
        raise error
    return records


def lambda_handler_for(
    rule_cls: type[GuardrailRule[Any]],
) -> Callable[[Mapping[str, Any], Any], list[dict[str, Any]]]:
    """The ``lambda_handler`` a rule module exports: ``lambda_handler = lambda_handler_for(MY_RULE)``."""

    def lambda_handler(event: Mapping[str, Any], context: Any) -> list[dict[str, Any]]:
        return handle(rule_cls(), event, context)

    lambda_handler.__doc__ = f"AWS Lambda entry point of {rule_cls.RULE_NAME}."
    return lambda_handler
