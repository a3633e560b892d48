"""ml-guardrails: AWS Config custom rules for a secure, self-service ML environment on AWS."""

from __future__ import annotations

__version__ = "0.1.0"
