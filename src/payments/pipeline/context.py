"""The typed context every agent and scheduled job receives (never a dict, never the app)."""

from __future__ import annotations

from dataclasses import dataclass

from payments.domain.clock import Clock
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.pipeline.metrics import Metrics
from payments.pipeline.settings import Settings

__all__ = ["AgentContext", "UnitOfWorkFactory"]


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """What an agent may use; built once per worker by ``pipeline/bootstrap.py``.

    Later capabilities add their gateways and tables here as typed fields.
    """

    #: Opens one database transaction (commit on normal exit, rollback on exception).
    unit_of_work: UnitOfWorkFactory
    clock: Clock
    metrics: Metrics
    settings: Settings
