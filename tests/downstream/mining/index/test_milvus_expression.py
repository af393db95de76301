"""Filters as Milvus boolean expressions: the engine evaluates these, so their text is the contract."""

from __future__ import annotations

from downstream.mining.index.milvus_index import to_expression
from downstream.mining.index.records import Filter
from shared.segment import Source


def test_empty_filter_is_no_expression() -> None:
    assert to_expression(None) == "" and to_expression(Filter()) == ""


def test_every_field_becomes_one_term() -> None:
    expr = to_expression(Filter(vehicle_ids=frozenset({"b", "a"}), start_ns=10, end_ns=20, tags_all=frozenset({"rain"}),
                                tags_any=frozenset({"x", "y"}), triggers_any=frozenset({"ttc"}),
                                sources=frozenset({Source.REAL})))
    assert expr == ('(vehicle_id in ["a", "b"]) and (start_ns <= 20) and (end_ns >= 10) and (source in ["REAL"]) '
                    'and (array_contains_all(tags, ["rain"])) and (array_contains_any(tags, ["x", "y"])) '
                    'and (array_contains_any(triggers, ["ttc"]))')
