"""Copy each runbook in remediations/ into template.yaml as an AWS::SSM::Document (the generated block).

remediations/*.yaml is the single source of the runbooks' content; template.yaml carries a generated copy
between the BEGIN/END markers so that cfn-lint, `sam validate` and `sam build` see the real documents
offline. Run `make template` after editing a runbook; tests/test_template.py fails while the copy is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
BEGIN = "  # BEGIN GENERATED RUNBOOK DOCUMENTS (make template; edit remediations/*.yaml, not this block)\n"
END = "  # END GENERATED RUNBOOK DOCUMENTS\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (scripts, descriptions) as literal blocks, so the copy stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def logical_id(document_name: str) -> str:
    """``MlGuardrails-EnableKmsKeyRotation`` -> ``EnableKmsKeyRotationDocument``."""
    return re.sub(r"[^A-Za-z0-9]", "", document_name.removeprefix("MlGuardrails-")) + "Document"


def render() -> str:
    blocks = [BEGIN]
    for path in sorted((ROOT / "remediations").glob("*.yaml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        body = yaml.dump(content, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
        blocks.append(
            f"  {logical_id(path.stem)}:\n"
            "    Type: AWS::SSM::Document\n"
            "    Properties:\n"
            f"      Name: {path.stem}\n"
            "      DocumentType: Automation\n"
            "      DocumentFormat: YAML\n"
            "      UpdateMethod: NewVersion\n"
            "      Content:\n" + "".join(f"        {line}\n" if line else "\n" for line in body.splitlines())
        )
    blocks.append(END)
    return "".join(blocks)


def sync(check: bool = False) -> bool:
    """Rewrite the generated block; with ``check``, only report whether it is current."""
    text = TEMPLATE.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + render() + text[end:]
    if check:
        return updated == text
    TEMPLATE.write_text(updated, encoding="utf-8")
    return True


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if sync(check=True) else "template.yaml is stale: run `make template`")
    sync()
