"""``parse_json`` refuses deep nesting up front, counting only real brackets, in one linear pass."""

from __future__ import annotations

import json

import pytest

from payments.web.errors import MalformedJson
from payments.web.payment_requests import MAX_JSON_DEPTH, json_depth, parse_json


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"k": ' * depth + b"null" + b"}" * depth


@pytest.mark.parametrize("nest", [arrays, objects])
def test_nesting_up_to_the_bound_parses(nest):
    assert json_depth(nest(MAX_JSON_DEPTH).decode()) == MAX_JSON_DEPTH
    assert parse_json(nest(MAX_JSON_DEPTH)) is not None


@pytest.mark.parametrize("nest", [arrays, objects])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 10_000, 200_000])
def test_nesting_past_the_bound_is_malformed_json_not_a_recursion_error(nest, depth):
    with pytest.raises(MalformedJson, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_json(nest(depth))


def test_unclosed_nesting_is_refused_by_its_depth_too():
    with pytest.raises(MalformedJson, match="nested deeper"):
        parse_json(b"[" * 10_000)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "\\"[[[["}', 1),
        ('{"a": "\\\\", "b": [[1]]}', 3),
        ('["]", "}", "\\\\\\"[", [{}]]', 3),
        ("42", 0),
        ('"just a [ string"', 0),
    ],
)
def test_brackets_inside_strings_do_not_count(text, depth):
    json.loads(text)  # each sample is valid JSON
    assert json_depth(text) == depth


def test_a_deep_looking_string_is_accepted_as_the_text_it_is():
    text = "[" * 10_000
    assert parse_json(json.dumps({"note": text}).encode()) == {"note": text}


def test_an_unterminated_string_full_of_escaped_quotes_is_scanned_once():
    # A scanner restarting at every quote would take quadratic time here (500,000 starts of up to a
    # megabyte each); this one consumes the string once. The per-test timeout guards the difference.
    text = '"' + '\\"' * 500_000 + "[" * 100

    assert json_depth(text) == 0
    with pytest.raises(MalformedJson):
        parse_json(text.encode())


def test_invalid_utf8_and_other_malformed_bodies_stay_malformed_json():
    for raw in (b"\xff\xfe", b"{", b'{"a": NaN}', b'{"a": 1, "a": 2}'):
        with pytest.raises(MalformedJson):
            parse_json(raw)
