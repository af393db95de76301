"""Ring buffer bounds (bytes, age, per topic), protected keyframes and the window semantics."""

from __future__ import annotations

import random

from shared.messages import SensorMessage
from vehicle.buffer.ring_buffer import RingBuffer

NS = 1_000_000_000


def msg(topic: str, t: int, size: int, key: bool = False, enc: str = "imu_v1") -> SensorMessage:
    return SensorMessage(topic, topic, t, 0, t, enc, b"\0" * size, key)


def cam(t: int, key: bool, size: int = 100) -> SensorMessage:
    return msg("camera/front", t, size, key, "h265")


def test_bytes_never_exceed_the_budget_and_evictions_are_counted() -> None:
    evicted: list[tuple[str, str]] = []
    buf = RingBuffer(3600 * NS, 10_000, on_evict=lambda t, c: evicted.append((t, c)))
    rng = random.Random(1)
    for i in range(2000):
        topic = rng.choice(["imu", "lidar/top", "gnss"])
        assert buf.append(i * 1000, msg(topic, i * 1000, rng.randint(1, 900)))
        assert buf.total_bytes <= 10_000
        assert buf.total_bytes == sum(buf.topic_bytes(t) for t in buf.topics())
    assert evicted and {c for _, c in evicted} == {"bytes"}
    assert len(buf) + len(evicted) == 2000


def test_byte_eviction_takes_the_oldest_message_first() -> None:
    buf = RingBuffer(3600 * NS, 300)
    buf.append(1, msg("a", 1, 100))
    buf.append(2, msg("b", 2, 100))
    buf.append(3, msg("a", 3, 100))
    buf.append(4, msg("b", 4, 100))
    assert {t: [i[0] for i in v] for t, v in buf.window(0, 10).items()} == {"a": [3], "b": [2, 4]}


def test_age_eviction_against_the_newest_time() -> None:
    evicted: list[tuple[str, str]] = []
    buf = RingBuffer(2 * NS, 10**9, on_evict=lambda t, c: evicted.append((t, c)))
    for k in range(50):
        buf.append(k * NS // 10, msg("imu", k * NS // 10, 10))
    buf.append(10 * NS, msg("gnss", 10 * NS, 10))  # a later message on another topic ages imu out
    assert "imu" not in buf.window(0, 100 * NS)
    assert evicted.count(("imu", "age")) == 50


def test_per_topic_budget() -> None:
    buf = RingBuffer(3600 * NS, 10**6, topic_max_bytes={"lidar/top": 250})
    for k in range(10):
        buf.append(k, msg("lidar/top", k, 100))
        buf.append(k, msg("imu", k, 100))
    assert buf.topic_bytes("lidar/top") == 200 and buf.topic_bytes("imu") == 1000


def test_last_keyframe_is_never_evicted_and_the_message_is_dropped_instead() -> None:
    buf = RingBuffer(1 * NS, 350)
    assert buf.append(0, cam(0, True))
    assert buf.append(1, cam(1, False))
    assert buf.append(2, cam(2, False))
    assert not buf.append(3, msg("imu", 3, 100)), "room only by evicting the newest keyframe"
    assert buf.total_bytes == 300
    assert not buf.append(10 * NS, cam(10 * NS, False))  # past max_age, yet the keyframe stays
    assert next(t for t, _ in buf.window(0, 20 * NS)["camera/front"]) == 0
    buf.append(11 * NS, cam(11 * NS, True))  # a newer keyframe frees the old GOP
    assert [t for t, _ in buf.window(0, 20 * NS)["camera/front"]] == [11 * NS]


def test_latched_topic_keeps_its_last_message_and_it_joins_the_window() -> None:
    buf = RingBuffer(1 * NS, 10**6, latched_topics=("calibration",))
    buf.append(0, msg("calibration", 0, 10))
    for k in range(1, 100):
        buf.append(k * NS, msg("imu", k * NS, 10))
    win = buf.window(98 * NS, 99 * NS)
    assert [t for t, _ in win["calibration"]] == [0]
    assert [t for t, _ in win["imu"]] == [98 * NS, 99 * NS]


def test_video_window_starts_at_the_last_keyframe_at_or_before_start() -> None:
    buf = RingBuffer(3600 * NS, 10**9)
    for k in range(90):
        buf.append(k * NS // 30, cam(k * NS // 30, k % 30 == 0))
        buf.append(k * NS // 30, msg("imu", k * NS // 30, 10))
    start, end = round(1.5 * NS), round(2.5 * NS)
    win = buf.window(start, end)
    assert win["camera/front"][0][0] == 1 * NS and win["camera/front"][0][1].keyframe
    assert win["camera/front"][-1][0] <= end
    assert all(start <= t <= end for t, _ in win["imu"])
    early = RingBuffer(3600 * NS, 10**9)
    for k in range(5, 40):
        early.append(k * NS // 30, cam(k * NS // 30, k % 30 == 0))
    assert early.window(0, 2 * NS)["camera/front"][0][0] == 1 * NS, "leading deltas are dropped"
