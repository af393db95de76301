"""The rolling in-memory buffer: the last minutes of every topic, bounded by age and by bytes.

Each topic is a deque of ``(t_ns, message)`` in arrival order, so appending and evicting are O(1).
Two things are never evicted while they are the newest of their kind, because a later snapshot
cannot be decoded without them: a video topic's last keyframe (and so everything after it), and
the last message of a latched topic (e.g. calibration). When the byte budget cannot be met
without evicting them, the incoming message is dropped instead, so ``total_bytes <= max_bytes``
always holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from shared.messages import SensorMessage

VIDEO_ENCODINGS = frozenset({"h264", "h265"})

Item = tuple[int, SensorMessage]
EvictHook = Callable[[str, str], None]


def is_video(msg: SensorMessage) -> bool:
    return msg.encoding in VIDEO_ENCODINGS


class RingBuffer:
    """Per-topic deques; payload bytes (``len(payload)``) are what the byte budgets count.

    ``max_age_ns`` is measured against the newest ``t_ns`` appended on any topic.
    ``on_evict(topic, cause)`` is called per evicted message (cause ``age`` or ``bytes``).
    """

    def __init__(
        self, max_age_ns: int, max_bytes: int, *, topic_max_bytes: dict[str, int] | None = None,
        latched_topics: tuple[str, ...] = (), on_evict: EvictHook | None = None,
    ) -> None:
        self.max_age_ns = max_age_ns
        self.max_bytes = max_bytes
        self._topic_max = dict(topic_max_bytes or {})
        self._latched = frozenset(latched_topics)
        self._on_evict = on_evict
        self._topics: dict[str, deque[Item]] = {}
        self._topic_bytes: dict[str, int] = {}
        self._last_key: dict[str, SensorMessage] = {}
        self.total_bytes = 0
        self.newest_ns = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._topics.values())

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def topic_bytes(self, topic: str) -> int:
        return self._topic_bytes.get(topic, 0)

    def append(self, t_ns: int, msg: SensorMessage) -> bool:
        """Buffer ``msg`` at time ``t_ns``; ``False`` when it was dropped for lack of room."""
        size = len(msg.payload)
        topic = msg.topic
        q = self._topics.get(topic)
        if q is None:
            q = self._topics[topic] = deque()
            self._topic_bytes[topic] = 0
        if t_ns > self.newest_ns:
            self.newest_ns = t_ns
            self._evict_age(self.newest_ns - self.max_age_ns)
        new_key = msg.keyframe and is_video(msg)
        # A new keyframe takes over the protection, so the GOP before it may go for room.
        old_key = self._last_key.pop(topic, None) if new_key else None
        if not self._make_room(topic, q, size):
            if old_key is not None and q and any(m is old_key for _, m in q):
                self._last_key[topic] = old_key
            return False
        q.append((t_ns, msg))
        self._topic_bytes[topic] += size
        self.total_bytes += size
        if new_key:
            self._last_key[topic] = msg
        return True

    def _make_room(self, topic: str, q: deque[Item], size: int) -> bool:
        budget = self._topic_max.get(topic)
        if budget is not None:
            while self._topic_bytes[topic] + size > budget:
                if not (q and self._evictable(topic, q)):
                    return False
                self._pop(topic, "bytes")
        while self.total_bytes + size > self.max_bytes:
            victim = self._oldest_evictable()
            if victim is None:
                return False
            self._pop(victim, "bytes")
        return True

    def _evictable(self, topic: str, q: deque[Item]) -> bool:
        head = q[0][1]
        if topic in self._latched and len(q) == 1:
            return False
        return self._last_key.get(topic) is not head

    def _oldest_evictable(self) -> str | None:
        best: str | None = None
        best_t = 0
        for topic, q in self._topics.items():
            if q and self._evictable(topic, q) and (best is None or q[0][0] < best_t):
                best, best_t = topic, q[0][0]
        return best

    def _evict_age(self, cutoff_ns: int) -> None:
        for topic, q in self._topics.items():
            while q and q[0][0] < cutoff_ns and self._evictable(topic, q):
                self._pop(topic, "age")

    def _pop(self, topic: str, cause: str) -> None:
        _, msg = self._topics[topic].popleft()
        size = len(msg.payload)
        self._topic_bytes[topic] -= size
        self.total_bytes -= size
        if self._on_evict is not None:
            self._on_evict(topic, cause)

    def window(self, start_ns: int, end_ns: int) -> dict[str, list[Item]]:
        """Messages per topic for the snapshot window ``[start_ns, end_ns]``, sorted by time.

        Video topics begin at the last keyframe with ``t <= start_ns`` (or, when the buffer holds
        none that old, at the first keyframe inside the window), so the clip decodes on its own.
        Latched topics also carry their last message before ``start_ns``.
        """
        out: dict[str, list[Item]] = {}
        for topic, q in self._topics.items():
            items = sorted(q, key=lambda it: it[0])
            if items and is_video(items[0][1]):
                begin = _video_begin(items, start_ns)
            else:
                begin = start_ns
                if topic in self._latched:
                    before = [t for t, _ in items if t < start_ns]
                    begin = before[-1] if before else start_ns
            chosen = [it for it in items if begin <= it[0] <= end_ns]
            if items and is_video(items[0][1]):
                chosen = _from_first_keyframe(chosen)
            if chosen:
                out[topic] = chosen
        return out


def _video_begin(items: list[Item], start_ns: int) -> int:
    begin: int | None = None
    for t, msg in items:
        if t > start_ns:
            break
        if msg.keyframe:
            begin = t
    return start_ns if begin is None else begin


def _from_first_keyframe(items: list[Item]) -> list[Item]:
    for i, (_, msg) in enumerate(items):
        if msg.keyframe:
            return items[i:]
    return []
