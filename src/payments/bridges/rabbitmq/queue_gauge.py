"""``QueueGauge`` on RabbitMQ: the depth of every work queue and its dead-letter queue.

Read with passive declares (``inspection.queue_depths``), so no management plugin is needed. Retry tiers
are left out: messages wait there on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractConnection

from payments.bridges.rabbitmq.inspection import queue_depths
from payments.domain.alerts.rules import QueueDepth
from payments.pipeline.topology import WORK_QUEUES, QueueSpec


class RabbitQueueGauge:
    def __init__(self, connection: AbstractConnection, *, queues: Sequence[QueueSpec] = WORK_QUEUES) -> None:
        self._connection = connection
        self._names = [name for spec in queues for name in (spec.name, spec.dead_letter_queue)]

    async def depths(self) -> Sequence[QueueDepth]:
        """Each queue's ready messages and consumers; a queue not declared yet is left out.

        Raises ``DependencyUnavailable`` when the broker cannot be asked.
        """
        return [
            QueueDepth(name=depth.name, messages=depth.messages, consumers=depth.consumers)
            for depth in await queue_depths(self._connection, self._names)
            if not depth.missing
        ]
