"""Tags: the record, its ``name:value`` encoding for ``Segment.tags`` and its JSON body."""

from __future__ import annotations

import pytest

from downstream.enrich.errors import TagFormatError
from downstream.enrich.tags import Tag, TagSource, best, encode_tags, parse_tag


def test_encode_sorts_deduplicates_and_drops_low_confidence() -> None:
    tags = [Tag("road_type", "highway", TagSource.MAP, 0.9), Tag("lighting", "night", TagSource.SOLAR, 1.0),
            Tag("road_type", "highway", TagSource.SPEED_PROFILE, 0.6), Tag("road_type", "urban", TagSource.SPEED_PROFILE, 0.4),
            Tag("agents", "pedestrian", TagSource.TRACKS, 0.5)]
    assert encode_tags(tags) == ("agents:pedestrian", "lighting:night", "road_type:highway")
    assert encode_tags(tags, min_confidence=0.0) == ("agents:pedestrian", "lighting:night", "road_type:highway",
                                                     "road_type:urban")


def test_parse_is_the_inverse_of_encode() -> None:
    tag = Tag("event", "cut_in", TagSource.TRACKS, 0.7)
    assert parse_tag(tag.encode()) == ("event", "cut_in")
    assert parse_tag("traffic_sign:de205") == ("traffic_sign", "de205")


@pytest.mark.parametrize("text", ["lighting", "Lighting:night", "lighting:", ":night", "road type:urban", "a:b c"])
def test_parse_rejects_what_the_grammar_forbids(text: str) -> None:
    with pytest.raises(TagFormatError):
        parse_tag(text)


@pytest.mark.parametrize(("name", "value", "confidence"), [("Road", "x", 0.5), ("road", "Urban", 0.5),
                                                           ("road", "urban", 1.5), ("road", "urban", -0.1)])
def test_tag_checks_its_fields(name: str, value: str, confidence: float) -> None:
    with pytest.raises(TagFormatError):
        Tag(name, value, TagSource.MAP, confidence)


def test_body_round_trip_keeps_source_and_confidence() -> None:
    tag = Tag("lighting_check", "disagree", TagSource.IMAGE, 0.6)
    assert Tag.from_body(tag.to_body()) == tag
    with pytest.raises(TagFormatError, match="known source"):
        Tag.from_body({"name": "x", "value": "y", "source": "oracle", "confidence": 1.0})
    with pytest.raises(TagFormatError):
        Tag.from_body({"name": "x", "value": "y", "source": "map"})


def test_best_prefers_confidence_then_the_first() -> None:
    a, b = Tag("traffic", "dense", TagSource.TRACKS, 0.8), Tag("traffic", "light", TagSource.DETECTIONS, 0.8)
    assert best([a, b], "traffic") is a
    assert best([Tag("traffic", "light", TagSource.DETECTIONS, 0.6), a], "traffic") is a
    assert best([a], "lighting") is None
