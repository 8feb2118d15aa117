"""The JSON output validates against the schema derived from the dataclasses."""

from __future__ import annotations

import copy
import json

import pytest

from loyalty_pilot.reports import document as d
from loyalty_pilot.reports.render import json_schema, render_json, validate


def test_json_round_trips_and_validates(any_verdict: d.DecisionDocument) -> None:
    data = json.loads(render_json(any_verdict))
    validate(data)
    assert d.from_dict(data) == any_verdict


def test_sparse_document_validates(sparse_doc: d.DecisionDocument) -> None:
    validate(json.loads(render_json(sparse_doc)))


def test_schema_is_valid_draft_2020_12_and_agrees_with_jsonschema(doc: d.DecisionDocument) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc.to_dict())
    bad = doc.to_dict()
    bad["decision"]["reasons"][1]["code"] = "nope"
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_schema_covers_every_dataclass_field() -> None:
    defs = json_schema()["$defs"]
    assert set(defs["DecisionDocument"]["properties"]) == set(
        d.DecisionDocument.__dataclass_fields__
    )
    assert defs["Reason"]["properties"]["code"]["enum"] == list(d.REASON_CODES)
    assert defs["Decision"]["properties"]["threshold"]["type"] == ["number", "null"]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda x: x["decision"]["reasons"][1].__setitem__("code", "made_up"),
            "$.decision.reasons[1].code",
        ),
        (lambda x: x["arms"][0].__setitem__("relative", "3%"), "$.arms[0].relative"),
        (lambda x: x["decision"].__setitem__("verdict", "MAYBE"), "$.decision.verdict"),
        (lambda x: x["reproducibility"].pop("seed"), "$.reproducibility"),
        (
            lambda x: x["projections"][1]["cost"].__setitem__("p90", True),
            "$.projections[1].cost.p90",
        ),
        (lambda x: x.__setitem__("extra", 1), "$.extra"),
        (lambda x: x["weekly"]["series"]["cash"].__setitem__(2, "x"), "$.weekly.series.cash[2]"),
        (lambda x: x["rollout"].__setitem__("stage", "finished"), "$.rollout.stage"),
        (lambda x: x["design"]["units"].__setitem__("cash", "store-1"), "$.design.units.cash"),
    ],
)
def test_invalid_document_names_the_path(doc: d.DecisionDocument, mutate, path: str) -> None:
    data = copy.deepcopy(doc.to_dict())
    mutate(data)
    with pytest.raises(
        ValueError,
        match="^"
        + path.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
        + ":",
    ):
        validate(data)


def test_render_json_refuses_an_unknown_code(doc: d.DecisionDocument) -> None:
    bad = d.DecisionDocument(**{**doc.__dict__, "risks": [d.Risk("meteor", 1.0)]})
    with pytest.raises(ValueError, match=r"\$\.risks\[0\]\.code"):
        render_json(bad)


def test_nan_is_written_as_null(doc: d.DecisionDocument) -> None:
    arm = d.ArmResult(**{**doc.arms[0].__dict__, "relative": float("nan")})
    odd = d.DecisionDocument(**{**doc.__dict__, "arms": [arm]})
    assert json.loads(render_json(odd))["arms"][0]["relative"] is None
