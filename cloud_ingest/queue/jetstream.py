"""The queue at fleet scale: a durable JetStream pull consumer on the relay's stream.

Each message carries its ``Nats-Msg-Id`` header (set by :mod:`cloud_ingest.queue.relay`); a
message without one, or whose payload is not an announcement, is acknowledged, skipped and
counted in :attr:`JetStreamFeed.malformed`, never fatal.
"""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cloud_ingest.config import RelayConfig
from cloud_ingest.queue.announce import Announcement
from cloud_ingest.queue.protocol import Delivery
from shared.errors import ContractError


class JetStreamFeed:
    """:class:`cloud_ingest.queue.protocol.SegmentFeed` on the durable consumer ``durable``.

    ``vehicle`` narrows the subscription to one vehicle's subject (``>``: all of them)."""

    def __init__(self, js: JetStreamContext, cfg: RelayConfig, durable: str, vehicle: str = ">",
                 ack_wait_s: float = 30.0) -> None:
        self.js, self.cfg, self.durable = js, cfg, durable
        self.subject = f"{cfg.subject_prefix}.{vehicle}"
        self.ack_wait_s = ack_wait_s
        self._malformed = 0
        self._sub: JetStreamContext.PullSubscription | None = None

    @property
    def malformed(self) -> int:
        return self._malformed

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait_s)
            self._sub = await self.js.pull_subscribe(self.subject, durable=self.durable,
                                                     stream=self.cfg.stream, config=config)
        return self._sub

    async def fetch(self, limit: int, timeout_s: float) -> list[Delivery]:
        sub = await self._subscription()
        try:
            msgs = await sub.fetch(limit, timeout=timeout_s)
        except (NatsTimeout, TimeoutError):  # nats-py raises either when nothing came in time
            return []
        out: list[Delivery] = []
        for msg in msgs:
            mid = (msg.headers or {}).get("Nats-Msg-Id", "")
            try:
                if not mid:
                    raise ContractError("message without Nats-Msg-Id")
                out.append(Delivery(mid, Announcement.decode(msg.data), msg))
            except ContractError:
                self._malformed += 1
                await msg.ack()
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            if not isinstance(d.handle, Msg):
                raise TypeError(f"delivery {d.msg_id} was not handed out by a JetStreamFeed")
            await d.handle.ack()

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
