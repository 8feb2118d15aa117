"""Strict reading of programme YAML: the bad-file corpus, YAML 1.2 scalars, line maps."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.specfile import (
    SpecError,
    load_model,
    load_programme,
    load_yaml,
    parse_yaml,
    programme_json_schema,
    validate_data,
)
from loyalty_pilot.simulator.programme import CashVoucher, Gift, Programme

DATA = Path(__file__).resolve().parent.parent / "data"
BAD = DATA / "bad_programmes"
GOOD = DATA / "good_programmes"


def _manifest() -> list[tuple[str, int, str]]:
    with open(BAD / "MANIFEST.csv", newline="", encoding="utf-8") as fh:
        return [(row["file"], int(row["line"]), row["fragment"]) for row in csv.DictReader(fh)]


MANIFEST = _manifest()


def _line_of(text: str, needle: str) -> int:
    """1-based line of the only line of ``text`` containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize(("name", "line", "fragment"), MANIFEST, ids=[m[0] for m in MANIFEST])
def test_bad_programme_is_reported_at_its_line(name: str, line: int, fragment: str) -> None:
    path = BAD / name
    with pytest.raises(SpecError) as info:
        load_programme(path)
    exc = info.value
    first = str(exc).splitlines()[0]
    assert exc.errors[0].line == line
    assert fragment in first
    assert first.startswith(f"{path}:{line}:")
    # one defect per file, one line per error, and the message is the formatted errors
    assert len(exc.errors) == 1, str(exc)
    assert str(exc).splitlines() == [issue.format() for issue in exc.errors]


def test_manifest_lists_every_corpus_file() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.name != "MANIFEST.csv"}
    listed = [name for name, _, _ in MANIFEST]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert len(listed) >= 24


def test_spec_error_is_a_user_error() -> None:
    with pytest.raises(UserError) as info:
        load_programme(BAD / "duplicate-key.yaml")
    assert isinstance(info.value, SpecError)
    assert info.value.exit_code == 2


THREE_DEFECTS = """\
programme: cash-voucher-500
earn:
  points_per_currency: 1.0
  welcom_bonus: 100
rewards:
  - {kind: cash_voucher, points: 0, value: 5.0}
economics: {gross_margin: 0.30, budget_share_of_revenue: 0.02}
currency: eur
"""


def test_every_error_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_DEFECTS, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_programme(path)
    exc = info.value
    lines = str(exc).splitlines()
    # in file order, not in the model's field order (currency is declared first)
    assert [issue.line for issue in exc.errors] == [
        _line_of(THREE_DEFECTS, "welcom_bonus"),
        _line_of(THREE_DEFECTS, "points: 0"),
        _line_of(THREE_DEFECTS, "currency: eur"),
    ]
    assert [issue.path for issue in exc.errors] == [
        ("earn", "welcom_bonus"),
        ("rewards", 0, "points"),
        ("currency",),
    ]
    assert len(lines) == 3
    assert all(line.startswith(f"{path}:") for line in lines)
    assert "did you mean 'welcome_bonus'?" in lines[0]
    # the column is that of the offending key inside the flow mapping
    assert exc.errors[1].col == THREE_DEFECTS.splitlines()[5].index("points") + 1


def test_ambiguous_number_and_other_errors_together(tmp_path: Path) -> None:
    text = "programme: 0123\neconomics: {gross_margin: 1.5, budget_share_of_revenue: 0.02}\n"
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_programme(path)
    reasons = [(issue.line, issue.path, issue.reason) for issue in info.value.errors]
    assert [r[:2] for r in reasons] == [
        (1, ("programme",)),
        (1, ("rewards",)),  # missing: at the top-level mapping
        (2, ("economics", "gross_margin")),
    ]
    assert "looks like an octal number" in reasons[0][2]
    assert reasons[1][2] == "missing key 'rewards'"
    assert reasons[2][2] == "must be less than 1, got 1.5"


# --------------------------------------------------------------------------- good files

GOOD_NAMES = {
    "architecture-example.yaml": "cash-voucher",
    "discount-card.yaml": "discount-card-2pc",
    "gift-catalogue.yaml": "gift-catalogue",
    "progressive-tiers.yaml": "progressive-2026",
    "quoted-values.yaml": "0123",
}


def test_good_corpus_is_listed() -> None:
    assert {p.name for p in GOOD.iterdir()} == set(GOOD_NAMES)


@pytest.mark.parametrize(("name", "programme"), sorted(GOOD_NAMES.items()))
def test_good_programme_loads(name: str, programme: str) -> None:
    loaded = load_programme(GOOD / name)
    assert isinstance(loaded, Programme)
    assert loaded.programme == programme


def test_architecture_example_loads_with_its_values() -> None:
    prog = load_programme(GOOD / "architecture-example.yaml")
    assert prog.rewards == [CashVoucher(kind="cash_voucher", points=500, value=5.0)]
    assert prog.enrolment.uptake == 0.35
    assert prog.earn is not None
    assert prog.earn.welcome_bonus == 100
    assert [(t.name, t.min_spend_12m, t.multiplier) for t in prog.tiers] == [
        ("silver", 0, 1.0),
        ("gold", 1000, 1.5),
    ]
    assert prog.expiry.inactivity_days == 365
    assert prog.referral is not None
    assert prog.referral.bonus_referrer == 200
    assert prog.response.churn_reduction.sd == 0.03


def test_quoted_and_yes_no_values_stay_text() -> None:
    prog = load_programme(GOOD / "quoted-values.yaml")
    assert prog.programme == "0123"
    assert prog.description == "no"
    assert prog.earn is not None
    assert prog.earn.points_per_currency == pytest.approx(0.1)


def test_gift_shares_and_dates() -> None:
    prog = load_programme(GOOD / "gift-catalogue.yaml")
    assert prog.start == dt.date(2026, 3, 30)
    assert all(isinstance(r, Gift) for r in prog.rewards)
    assert prog.reward_shares == [0.6, 0.4]


# --------------------------------------------------------------------------- YAML reading

SCALARS = """\
yes_: yes
no_: no
on_: on
off_: Off
y_: y
n_: N
true_: true
false_: FALSE
zero: 0
int_: 12
neg: -3
exp: 1e-3
half: .5
float_: 2.50
octal: 0123
octal_o: 0o17
hex: 0x1F
binary: 0b101
underscore: 1_000
quoted: '0123'
sexagesimal: 1:30
date: 2026-03-30
empty:
"""


def test_yaml_12_scalars(tmp_path: Path) -> None:
    path = tmp_path / "scalars.yaml"
    path.write_text(SCALARS, encoding="utf-8")
    data, lines = load_yaml(path)
    assert data == {
        "yes_": "yes",
        "no_": "no",
        "on_": "on",
        "off_": "Off",
        "y_": "y",
        "n_": "N",
        "true_": True,
        "false_": False,
        "zero": 0,
        "int_": 12,
        "neg": -3,
        "exp": 0.001,
        "half": 0.5,
        "float_": 2.5,
        "octal": "0123",
        "octal_o": "0o17",
        "hex": "0x1F",
        "binary": "0b101",
        "underscore": "1_000",
        "quoted": "0123",
        "sexagesimal": "1:30",
        "date": dt.date(2026, 3, 30),
        "empty": None,
    }
    assert type(data["zero"]) is int
    assert type(data["exp"]) is float
    assert set(lines.ambiguous) == {
        ("octal",),
        ("octal_o",),
        ("hex",),
        ("binary",),
        ("underscore",),
    }
    assert "octal" in lines.ambiguous[("octal",)]
    assert "hexadecimal" in lines.ambiguous[("hex",)]


LINES = """\
programme: x
rewards:
  - kind: gift
    points: 500
  - {kind: cash_voucher, points: 300}
tiers: [{name: a}, {name: b}]
"""


def test_line_map_records_keys_and_items() -> None:
    _, lines = parse_yaml(LINES, "f.yaml")
    rows = LINES.splitlines()
    assert lines[("programme",)] == (1, 1)
    assert lines[("rewards",)] == (2, 1)
    assert lines[("rewards", 0)] == (3, rows[2].index("kind") + 1)
    assert lines[("rewards", 0, "points")] == (4, rows[3].index("points") + 1)
    assert lines[("rewards", 1)] == (5, rows[4].index("{") + 1)
    assert lines[("rewards", 1, "points")] == (5, rows[4].index("points") + 1)
    assert lines[("tiers", 1, "name")] == (6, rows[5].rindex("name") + 1)
    assert ("rewards", 2) not in lines
    # a path below the file's nodes falls back to its deepest existing node
    assert lines.locate(("rewards", 1, "value")) == lines[("rewards", 1)]
    assert lines.locate(("nowhere", 3)) == (1, 1)


@pytest.mark.parametrize(
    ("text", "line", "first_line"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, 1),
        ("earn:\n  x: 1\n  y: 2\n  x: 1\n", 4, 2),
        ("rewards:\n  - {kind: gift, points: 1, points: 2}\n", 2, 2),
    ],
)
def test_duplicate_keys_name_both_lines(text: str, line: int, first_line: int) -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "dup.yaml")
    (issue,) = info.value.errors
    assert issue.line == line
    assert f"(first on line {first_line})" in issue.reason
    assert issue.reason.startswith("duplicate key")


def test_all_duplicate_keys_are_reported() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n", "dup.yaml")
    assert [(i.line, i.path) for i in info.value.errors] == [(2, ("a",)), (5, ("b", "c"))]


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("a: [1, 2\n", 2, 1, "expected ',' or ']'"),
        ("a: 1\n b: 2\n", 2, 3, "mapping values are not allowed here"),
        ("a:\n\tb: 1\n", 2, 1, "never tabs"),
        ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document"),
        ("x: 2026-02-30\n", 1, 4, "not a valid date"),
        ("? [a]\n: 1\n", 1, 3, "a key must be a plain name"),
        ("~\n", 1, 1, "the top level must be a mapping"),
        ("just text\n", 1, 1, "the top level must be a mapping"),
        ("\n\n", 1, 1, "the file is empty"),
    ],
)
def test_yaml_errors_have_a_position(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "bad.yaml")
    (issue,) = info.value.errors
    assert (issue.line, issue.col) == (line, col)
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"bad.yaml:{line}:{col}: ")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_programme(path)
    assert str(info.value) == f"{path}: no such file"


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_programme(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a folder, not a file"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("programme: x\n", encoding="utf-8")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod 0 does not stop root
    with pytest.raises(SpecError) as info:
        load_programme(path)
    assert str(info.value) == f"{path}: cannot be read: Permission denied"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    source = (GOOD / "discount-card.yaml").read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + source)
    assert load_programme(path) == load_programme(GOOD / "discount-card.yaml")


# --------------------------------------------------------------------------- generic models


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    start: dt.date
    weeks: int = Field(gt=0)


class Pilot(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    pilot: str
    unit: str = "store"
    test_period: Window


@pytest.mark.parametrize(
    ("key", "suggestion"), [("EARN", "earn"), ("rewrds", "rewards"), ("Currency", "currency")]
)
def test_unknown_key_suggests_an_allowed_key(key: str, suggestion: str) -> None:
    text = (GOOD / "discount-card.yaml").read_text(encoding="utf-8")
    data, lines = parse_yaml(text.replace("description:", f"{key}:"), "s.yaml")
    with pytest.raises(SpecError) as info:
        validate_data(data, lines, Programme)
    (issue,) = info.value.errors
    assert issue.reason == f"unknown key {key!r} (did you mean {suggestion!r}?)"
    assert issue.line == _line_of(text, "description:")


DISCOUNT_CARD = (GOOD / "discount-card.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        (
            "currency: EUR",
            "2026: EUR",
            (2026,),
            "a key must be text, got the number 2026; quote it",
        ),
        (
            "  - kind: discount\n    rate: 0.02",
            "  - discount",
            ("rewards", 0),
            "expected a mapping with a key 'kind' (one of: cash_voucher, gift, discount, "
            "progressive_discount), got the text 'discount'",
        ),
        (
            "currency: EUR",
            "currency: EUR\nreferral: {rate_per_member_year: 0.1}",
            ("referral",),
            "referral bonuses are points: they need a reward with points",
        ),
    ],
)
def test_reasons_for_odd_input(old: str, new: str, path: tuple, reason: str) -> None:
    assert old in DISCOUNT_CARD
    text = DISCOUNT_CARD.replace(old, new)
    data, lines = parse_yaml(text, "odd.yaml")
    with pytest.raises(SpecError) as info:
        validate_data(data, lines, Programme)
    (issue,) = info.value.errors
    assert (issue.path, issue.reason) == (path, reason)
    assert issue.line == _line_of(text, new.splitlines()[-1])


def test_load_model_works_for_any_strict_model(tmp_path: Path) -> None:
    text = "pilot: spring\nuint: store\ntest_period:\n  start: 2026-03-30\n"
    path = tmp_path / "pilot.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_model(path, Pilot)
    assert [(i.line, i.col, i.path) for i in info.value.errors] == [
        (2, 1, ("uint",)),
        (3, 1, ("test_period", "weeks")),  # missing: at the parent mapping's key
    ]
    assert info.value.errors[0].reason == "unknown key 'uint' (did you mean 'unit'?)"
    assert info.value.errors[1].reason == "missing key 'weeks'"

    path.write_text(text.replace("uint", "unit") + "  weeks: 12\n", encoding="utf-8")
    pilot = load_model(path, Pilot)
    assert pilot.test_period == Window(start=dt.date(2026, 3, 30), weeks=12)


# --------------------------------------------------------------------------- JSON schema


def test_programme_json_schema() -> None:
    schema = programme_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "loyalty-pilot programme variant"
    assert set(schema["properties"]) == {
        "programme",
        "description",
        "currency",
        "start",
        "enrolment",
        "earn",
        "rewards",
        "redemption",
        "expiry",
        "tiers",
        "referral",
        "economics",
        "response",
        "smart",
    }
    assert set(schema["required"]) == {"programme", "rewards", "economics"}
    assert schema["additionalProperties"] is False
    mapping = schema["properties"]["rewards"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == {"cash_voucher", "gift", "discount", "progressive_discount"}
    assert json.loads(json.dumps(schema)) == schema
