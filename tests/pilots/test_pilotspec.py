"""Pilot files: the strict model, its cross-field rules, programme files, data checks."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.pilots.pilotspec import (
    DESIGN_METHODS,
    GUARDRAIL_METRICS,
    METRIC_COLUMNS,
    PRIMARY_METRICS,
    UNITS,
    Pilot,
    check_against_data,
    example_pilots,
    load_pilot,
    pilot_json_schema,
)
from loyalty_pilot.pilots.specfile import SpecError, load_yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
BAD = DATA / "bad_pilots"
GOOD = DATA / "good_pilots"
GOOD_PROGRAMMES = DATA / "good_programmes"
EXAMPLE = ROOT / "examples" / "pilots" / "cash-vs-gift.yaml"
SYNTHETIC_REGIONS = ("north", "south", "east", "west", "centre")


def _manifest() -> list[tuple[str, int, str]]:
    with open(BAD / "MANIFEST.csv", newline="", encoding="utf-8") as fh:
        return [(row["file"], int(row["line"]), row["fragment"]) for row in csv.DictReader(fh)]


MANIFEST = _manifest()

BASE = """\
pilot: spring-cash-vs-gift
description: cash voucher and gift catalogue against a control
arms:
  control: null
  cash: PROGRAMMES/architecture-example.yaml
  gift: PROGRAMMES/gift-catalogue.yaml
unit: store
pre_period: {start: 2025-01-06, end: 2026-03-29}
test_period: {start: 2026-03-30, weeks: 12}
design:
  method: matched
  stratify_by: [region]
  units_per_arm: 8
  seed: 7
metrics:
  primary: sales
  secondary: [visits, basket_size, active_customers]
  guardrails:
    - {metric: gross_margin_rate, margin: 0.005}
decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}
rollout:
  waves:
    - {name: north, regions: [north]}
    - {name: national}
"""


def _write(tmp_path: Path, text: str, name: str = "pilot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("PROGRAMMES", str(GOOD_PROGRAMMES)), encoding="utf-8")
    return path


def _variant(*changes: tuple[str, str]) -> str:
    text = BASE
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _line_of(text: str, needle: str) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize(("name", "line", "fragment"), MANIFEST, ids=[m[0] for m in MANIFEST])
def test_bad_pilot_is_reported_at_its_line(name: str, line: int, fragment: str) -> None:
    path = BAD / name
    with pytest.raises(SpecError) as info:
        load_pilot(path)
    exc = info.value
    first = str(exc).splitlines()[0]
    assert exc.errors[0].line == line
    assert fragment in first, first
    if exc.errors[0].file == str(path):
        assert first.startswith(f"{path}:{line}:")
    else:  # the defect is in the arm's programme file, reported at its own line
        assert "bad_programmes" in fragment
    assert len(exc.errors) == 1, str(exc)
    assert str(exc).splitlines() == [issue.format() for issue in exc.errors]
    assert exc.exit_code == 2


def test_manifest_lists_every_corpus_file() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.name != "MANIFEST.csv"}
    listed = [name for name, _, _ in MANIFEST]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert len(listed) >= 20


def test_spec_error_is_a_user_error() -> None:
    with pytest.raises(UserError) as info:
        load_pilot(BAD / "no-control-arm.yaml")
    assert isinstance(info.value, SpecError)
    assert info.value.exit_code == 2


def test_no_such_pilot_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_pilot(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- good files


def test_the_example_loads_with_its_programmes() -> None:
    pf = load_pilot(EXAMPLE)
    spec = pf.spec
    assert pf.control() == "control"
    assert pf.variants() == ("cash", "gift")
    assert {arm: p.programme for arm, p in pf.programmes.items()} == {
        "cash": "cash-voucher",
        "gift": "gift-catalogue",
    }
    assert pf.programme_paths["cash"] == (ROOT / "examples" / "programmes" / "cash-voucher.yaml")
    assert spec.unit == "store"
    assert spec.design.method == "matched"
    assert spec.test_period.n_weeks == 12
    # the test period follows the pre-period at once and ends with the synthetic chain
    assert spec.test_period.start == spec.pre_period.end + dt.timedelta(days=1)
    assert spec.pre_period.start == dt.date(2024, 1, 1)
    assert spec.test_period.last_day == dt.date(2024, 1, 1) + dt.timedelta(weeks=104, days=-1)
    regions = {r for wave in spec.rollout.waves for r in wave.regions or []}
    assert regions <= set(SYNTHETIC_REGIONS)


def test_the_example_fits_the_synthetic_chain() -> None:
    from loyalty_pilot.pilots.synthetic import generate

    chain = generate(stores=48, regions=5, customers=300, weeks=104, seed=0)
    dates = chain.baskets["date"]
    pf = load_pilot(EXAMPLE)
    check_against_data(
        pf,
        data_start=dates.min().date(),
        data_end=dates.max().date(),
        n_eligible=len(chain.stores),
        regions=set(chain.stores["region"]),
        units=set(chain.stores["store_id"]),
        attributes=("region", "format", "size_band"),
    )
    assert set(chain.stores["region"]) == set(SYNTHETIC_REGIONS)


def test_the_shipped_examples_are_the_repository_examples() -> None:
    shipped = {p.name: p.read_text() for p in example_pilots()}
    here = {p.name: p.read_text() for p in EXAMPLE.parent.glob("*.yaml")}
    assert shipped == here
    assert "cash-vs-gift.yaml" in shipped


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_good_pilots_load(path: Path) -> None:
    pf = load_pilot(path)
    assert set(pf.programmes) == set(pf.variants())
    assert pf.control() not in pf.programmes


def test_defaults_of_a_minimal_pilot() -> None:
    spec = load_pilot(GOOD / "minimal.yaml").spec
    assert spec.unit == "store"
    assert spec.description == ""
    assert spec.design.method == "matched"
    assert spec.design.units_per_arm is None
    assert spec.design.match_on == ["level", "trend"]
    assert spec.design.stratify_by == []
    assert spec.design.acceptance == 0.05
    assert spec.design.max_mahalanobis is None
    assert spec.power.units_per_arm == [4, 6, 8, 12, 16]
    assert spec.power.weeks == [8, 12, 16]
    assert (spec.power.placebos, spec.power.target) == (1000, 0.8)
    assert (spec.power.estimator, spec.power.scale) == ("ratio", "log")
    assert spec.power.controls == ["matched", "all"]
    assert spec.decision.rule == "expected_profit"
    assert (spec.decision.prior, spec.decision.horizon_months) == ("assumptions", 12)
    assert spec.decision.loss_threshold is None
    assert spec.decision.max_loss_probability == 0.10
    assert spec.metrics.primary == "sales"
    assert spec.metrics.secondary == []
    assert spec.metrics.guardrails == []
    assert (spec.decision.alpha, spec.decision.min_uplift, spec.decision.min_roi) == (
        0.05,
        "break_even",
        0.0,
    )
    assert spec.rollout.holdout_share == 0.0
    assert [w.name for w in spec.rollout.waves] == ["national"]
    assert spec.evaluation_method == spec.evaluation.method == "ratio"
    assert spec.evaluation.scale == "auto"
    # the pre-period is 25 weeks: the default eligibility (26 weeks) is capped to it
    assert spec.pre_period.weeks == 25
    assert spec.min_pre_weeks == spec.eligibility.min_pre_weeks == 25
    assert spec.eligibility.exclude == []
    assert spec.eligibility.min_weekly_sales == 0.0
    assert (spec.test_period.weeks, spec.test_period.end) == (8, dt.date(2025, 8, 24))
    assert spec.power_weeks == (8, 12, 16)
    assert spec.wave_weeks == (8,)


def test_derived_values_of_the_good_variants() -> None:
    customers = load_pilot(GOOD / "rerandomized-customers.yaml")
    assert customers.control() == "holdout"
    assert customers.variants() == ("cash", "gift")
    # given by its end, the test period also has its weeks (and the other way round)
    assert customers.spec.test_period.weeks == customers.spec.test_period.n_weeks == 12
    assert customers.spec.test_period.end == dt.date(2026, 6, 28)
    assert customers.spec.eligibility.exclude == ["0042", "C000017"]
    assert customers.spec.decision.min_uplift == 0.02
    synthetic = load_pilot(GOOD / "synthetic-region.yaml").spec
    assert synthetic.evaluation.method == synthetic.evaluation_method == "synthetic_control"
    assert synthetic.design.treated_regions == 2
    assert synthetic.decision.rule == "interval"  # no standard error for the money rule
    cluster = load_pilot(GOOD / "cluster-by-region.yaml").spec
    assert cluster.wave_weeks == (8, 16, 16)
    stratified = load_pilot(GOOD / "stratified-rollout.yaml").spec
    assert stratified.description == "no"  # text, not false
    assert stratified.decision.min_uplift == 0.0


ARCHITECTURE_EXAMPLE = """\
pilot: spring-cash-vs-gift
arms: {control: null, cash: cash-voucher.yaml, gift: gift-catalogue.yaml}
unit: store                      # store | region | customer
pre_period: {start: 2025-01-06, end: 2026-03-29}
test_period: {start: 2026-03-30, weeks: 12}
design: {method: matched, stratify_by: [region], units_per_arm: 8, seed: 7}
metrics: {primary: sales, secondary: [visits, basket_size, active_customers]}
decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}
rollout: {waves: [{name: north, regions: [north]}, {name: national}]}
"""


def test_the_architecture_contract_example(tmp_path: Path) -> None:
    for name in ("cash-voucher.yaml", "gift-catalogue.yaml"):
        shutil.copy(ROOT / "examples" / "programmes" / name, tmp_path / name)
    path = tmp_path / "spring.yaml"
    path.write_text(ARCHITECTURE_EXAMPLE, encoding="utf-8")
    pf = load_pilot(path)
    assert pf.spec.pilot == "spring-cash-vs-gift"
    assert pf.programme_paths == {
        "cash": tmp_path / "cash-voucher.yaml",
        "gift": tmp_path / "gift-catalogue.yaml",
    }


def test_absolute_programme_paths(tmp_path: Path) -> None:
    pf = load_pilot(_write(tmp_path, BASE))
    assert pf.programme_paths["cash"] == GOOD_PROGRAMMES / "architecture-example.yaml"


def test_the_model_validates_plain_data() -> None:
    data, _ = load_yaml(EXAMPLE)
    spec = Pilot.model_validate(data)
    assert spec.control == "control"
    assert spec.variants == ("cash", "gift")
    # stratify_by and match_on do not apply to complete (match_on's default value is let be)
    data["design"].update(method="complete", match_on=["level", "volatility"])
    with pytest.raises(ValidationError) as info:
        Pilot.model_validate(data)
    assert {e["loc"] for e in info.value.errors()} == {
        ("design", "stratify_by"),
        ("design", "match_on"),
    }


@pytest.mark.parametrize("path", [EXAMPLE, *sorted(GOOD.glob("*.yaml"))], ids=lambda p: p.name)
def test_a_validated_pilot_validates_again_unchanged(path: Path) -> None:
    spec = load_pilot(path).spec
    assert Pilot.model_validate(spec.model_dump()) == spec


def test_weeks_and_end_may_both_be_given_when_they_agree(tmp_path: Path) -> None:
    text = _variant(("weeks: 12}", "weeks: 12, end: 2026-06-21}"))
    period = load_pilot(_write(tmp_path, text)).spec.test_period
    assert (period.weeks, period.end) == (12, dt.date(2026, 6, 21))


def test_constants() -> None:
    assert UNITS == ("store", "region", "customer")
    assert DESIGN_METHODS == (
        "complete",
        "stratified",
        "matched",
        "rerandomized",
        "cluster",
        "synthetic_region",
    )
    assert PRIMARY_METRICS == ("sales", "visits", "basket_size", "active_customers")
    assert set(PRIMARY_METRICS) < set(GUARDRAIL_METRICS)
    assert {"gross_margin_rate", "programme_cost_share", "returns_rate"} < set(GUARDRAIL_METRICS)
    assert METRIC_COLUMNS == {
        "sales": "sales",
        "visits": "baskets",
        "basket_size": "avg_basket",
        "active_customers": "active_customers",
    }


# --------------------------------------------------------------------------- cross-field rules

METHOD_LINES = "  method: matched\n  stratify_by: [region]\n"

RULES = [
    (
        "region-unit-stratify-by",
        [("unit: store", "unit: region")],
        ("design", "stratify_by"),
        "nothing to stratify by",
    ),
    (
        "region-unit-stratified",
        [("unit: store", "unit: region"), ("method: matched", "method: stratified")],
        ("design", "method"),
        "with unit region use complete, matched or rerandomized",
    ),
    (
        "region-unit-cluster",
        [
            ("unit: store", "unit: region"),
            (METHOD_LINES, "  method: cluster\n  cluster_by: region\n"),
        ],
        ("design", "method"),
        "it needs unit store, not region",
    ),
    (
        "customer-unit-synthetic-region",
        [("unit: store", "unit: customer"), (METHOD_LINES, "  method: synthetic_region\n")],
        ("design", "method"),
        "unit store or region, not customer",
    ),
    (
        "synthetic-region-evaluated-by-did",
        [
            (METHOD_LINES, "  method: synthetic_region\n"),
            ("rollout:", "evaluation: {method: did}\nrollout:"),
        ],
        ("evaluation", "method"),
        "a synthetic_region design is evaluated with synthetic_control",
    ),
    (
        "mahalanobis-and-acceptance",
        [(METHOD_LINES, "  method: rerandomized\n  max_mahalanobis: 2.0\n  acceptance: 0.1\n")],
        ("design", "acceptance"),
        "give max_mahalanobis or acceptance, not both",
    ),
    (
        "mahalanobis-zero",
        [(METHOD_LINES, "  method: rerandomized\n  max_mahalanobis: 0\n")],
        ("design", "max_mahalanobis"),
        "must be greater than 0, got 0",
    ),
    (
        "acceptance-one",
        [(METHOD_LINES, "  method: rerandomized\n  acceptance: 1.0\n")],
        ("design", "acceptance"),
        "must be less than 1",
    ),
    (
        "match-on-with-complete",
        [(METHOD_LINES, "  method: complete\n  match_on: [level]\n")],
        ("design", "match_on"),
        "match_on is for the matched and rerandomized methods, not complete",
    ),
    (
        "match-on-empty",
        [(METHOD_LINES, METHOD_LINES + "  match_on: []\n")],
        ("design", "match_on"),
        "must have at least 1 item",
    ),
    (
        "mahalanobis-with-matched",
        [("  seed: 7\n", "  max_mahalanobis: 3.0\n  seed: 7\n")],
        ("design", "max_mahalanobis"),
        "max_mahalanobis is for the rerandomized method, not matched",
    ),
    (
        "cluster-by-with-matched",
        [("  seed: 7\n", "  cluster_by: region\n  seed: 7\n")],
        ("design", "cluster_by"),
        "cluster_by is for the cluster method, not matched",
    ),
    (
        "treated-regions-with-matched",
        [("  seed: 7\n", "  treated_regions: 2\n  seed: 7\n")],
        ("design", "treated_regions"),
        "treated_regions is for the synthetic_region method",
    ),
    (
        "stratify-by-twice",
        [("stratify_by: [region]", "stratify_by: [region, format, region]")],
        ("design", "stratify_by", 2),
        "key 'region' is listed twice",
    ),
    (
        "negative-seed",
        [("seed: 7", "seed: -7")],
        ("design", "seed"),
        "must be at least 0",
    ),
    (
        "boolean-seed",
        [("seed: 7", "seed: true")],
        ("design", "seed"),
        "expected a whole number, got true",
    ),
    (
        "pre-start-not-monday",
        [("start: 2025-01-06", "start: 2025-01-07")],
        ("pre_period", "start"),
        "2025-01-07 is a Tuesday: weeks run Monday to Sunday, so a period starts on a Monday "
        "(such as 2025-01-06 or 2025-01-13)",
    ),
    (
        "test-end-before-start",
        [("{start: 2026-03-30, weeks: 12}", "{start: 2026-03-30, end: 2026-03-22}")],
        ("test_period", "end"),
        "the end 2026-03-22 must come after the start 2026-03-30",
    ),
    (
        "test-end-not-sunday",
        [("{start: 2026-03-30, weeks: 12}", "{start: 2026-03-30, end: 2026-06-20}")],
        ("test_period", "end"),
        "2026-06-20 is a Saturday",
    ),
    (
        "test-without-length",
        [("{start: 2026-03-30, weeks: 12}", "{start: 2026-03-30}")],
        ("test_period",),
        "give the test length as 'weeks' or its last day as 'end'",
    ),
    (
        "test-too-long",
        [("weeks: 12}", "weeks: 105}")],
        ("test_period", "weeks"),
        "must be at most 104",
    ),
    (
        "exclude-twice",
        [("design:\n", "eligibility: {exclude: [S001, S002, S001]}\ndesign:\n")],
        ("eligibility", "exclude", 2),
        "unit 'S001' is listed twice",
    ),
    (
        "negative-min-weekly-sales",
        [("design:\n", "eligibility: {min_weekly_sales: -1}\ndesign:\n")],
        ("eligibility", "min_weekly_sales"),
        "must be at least 0",
    ),
    (
        "power-weeks-longer-than-pre-period",
        [("metrics:\n", "power: {weeks: [8, 62]}\nmetrics:\n")],
        ("power", "weeks", 1),
        "a 62-week placebo pilot and its own 4-week pre-period do not fit in the 64-week",
    ),
    (
        "power-target-one",
        [("metrics:\n", "power: {target: 1}\nmetrics:\n")],
        ("power", "target"),
        "must be less than 1",
    ),
    (
        "power-unknown-estimator",
        [("metrics:\n", "power: {estimator: synthetic_control}\nmetrics:\n")],
        ("power", "estimator"),
        "expected 'ratio', 'did', 'ancova' or 'ri'",
    ),
    (
        "secondary-twice",
        [("[visits, basket_size, active_customers]", "[visits, visits]")],
        ("metrics", "secondary", 1),
        "metric 'visits' is listed twice",
    ),
    (
        "guardrail-on-primary",
        [("metric: gross_margin_rate", "metric: sales")],
        ("metrics", "guardrails", 0, "metric"),
        "'sales' is the primary metric: the decision already tests it",
    ),
    (
        "guardrail-twice",
        [
            (
                "    - {metric: gross_margin_rate, margin: 0.005}\n",
                "    - {metric: gross_margin_rate, margin: 0.005}\n"
                "    - {metric: gross_margin_rate, margin: 0.01}\n",
            )
        ],
        ("metrics", "guardrails", 1, "metric"),
        "a guardrail on 'gross_margin_rate' is given twice",
    ),
    (
        "guardrail-margin-one",
        [("margin: 0.005", "margin: 1")],
        ("metrics", "guardrails", 0, "margin"),
        "must be less than 1",
    ),
    (
        "min-uplift-too-large",
        [("min_uplift: break_even", "min_uplift: 12")],
        ("decision", "min_uplift"),
        "must be between -1 and 10 (a relative uplift), got 12",
    ),
    (
        "min-uplift-boolean",
        [("min_uplift: break_even", "min_uplift: true")],
        ("decision", "min_uplift"),
        "expected break_even or a number such as 0.02, got True",
    ),
    (
        "alpha-zero",
        [("alpha: 0.05", "alpha: 0")],
        ("decision", "alpha"),
        "must be greater than 0",
    ),
    (
        "min-roi-below-minus-one",
        [("min_roi: 1.0", "min_roi: -2")],
        ("decision", "min_roi"),
        "must be at least -1",
    ),
    (
        "share-one-before-the-last-wave",
        [("    - {name: national}\n", "    - {name: all, share: 1}\n    - {name: national}\n")],
        ("rollout", "waves", 1, "share"),
        "share 1 treats every store: only the last wave",
    ),
    (
        "share-into-the-holdout",
        [
            ("rollout:\n", "rollout:\n  holdout_share: 0.2\n"),
            (
                "    - {name: national}\n",
                "    - {name: most, share: 0.9}\n    - {name: national}\n",
            ),
        ],
        ("rollout", "waves", 1, "share"),
        "share 0.9 would treat the holdout (holdout_share 0.2) before the last wave; at most 0.8",
    ),
    (
        "wave-regions-empty",
        [("regions: [north]", "regions: []")],
        ("rollout", "waves", 0, "regions"),
        "must have at least 1 item",
    ),
    (
        "waves-empty",
        [
            (
                "  waves:\n    - {name: north, regions: [north]}\n    - {name: national}\n",
                "  waves: []\n",
            )
        ],
        ("rollout", "waves"),
        "must have at least 1 item",
    ),
    (
        "wave-min-weeks-zero",
        [("{name: national}", "{name: national, min_weeks: 0}")],
        ("rollout", "waves", 1, "min_weeks"),
        "must be at least 1",
    ),
    (
        "wave-unknown-key",
        [("{name: national}", "{name: national, region: [south]}")],
        ("rollout", "waves", 1, "region"),
        "unknown key 'region' (did you mean 'regions'?)",
    ),
    (
        "unknown-evaluation-method",
        [("rollout:", "evaluation: {method: diff}\nrollout:")],
        ("evaluation", "method"),
        "expected 'ratio', 'did', 'ancova', 'ri', 'synthetic_control' or 'event_study'",
    ),
    (
        "arm-file-empty-text",
        [("  control: null\n", "  control: null\n  empty: ''\n")],
        ("arms", "empty"),
        "expected the path of a programme file, or null for the control",
    ),
    (
        "arm-file-a-number",
        [("  control: null\n", "  control: null\n  number: 5\n")],
        ("arms", "number"),
        "expected text, got the number 5",
    ),
]


@pytest.mark.parametrize(
    ("changes", "path", "fragment"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_cross_field_rule(
    tmp_path: Path, changes: list[tuple[str, str]], path: tuple, fragment: str
) -> None:
    file = _write(tmp_path, _variant(*changes))
    with pytest.raises(SpecError) as info:
        load_pilot(file)
    errors = info.value.errors
    assert len(errors) == 1, str(info.value)
    issue = errors[0]
    assert issue.path == path, str(info.value)
    assert fragment in issue.reason, issue.reason
    _, lines = load_yaml(file)
    assert (issue.line, issue.col) == lines.locate(path)


def test_each_rule_is_a_distinct_case() -> None:
    assert len({r[0] for r in RULES}) == len(RULES)


def test_a_programme_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "cash.yaml").mkdir()
    text = _variant(("PROGRAMMES/architecture-example.yaml", "cash.yaml"))
    with pytest.raises(SpecError) as info:
        load_pilot(_write(tmp_path, text))
    assert info.value.errors[0].path == ("arms", "cash")
    assert "cash.yaml is a folder, not a programme file" in str(info.value)


def test_two_files_with_the_same_programme_name(tmp_path: Path) -> None:
    shutil.copy(GOOD_PROGRAMMES / "architecture-example.yaml", tmp_path / "copy.yaml")
    text = _variant(("PROGRAMMES/gift-catalogue.yaml", "copy.yaml"))
    with pytest.raises(SpecError) as info:
        load_pilot(_write(tmp_path, text))
    (issue,) = info.value.errors
    assert issue.path == ("arms", "gift")
    assert issue.line == _line_of(text, "copy.yaml")
    assert "programme 'cash-voucher' (copy.yaml) is also the programme of arm 'cash'" in (
        issue.reason
    )


# --------------------------------------------------------------------------- all at once

THREE_DEFECTS = _variant(
    ("unit: store", "unit: shop"),
    ("stratify_by: [region]", "stratify_by: [region, city]"),
    ("alpha: 0.05", "alpha: 0.6"),
)


def test_every_error_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = _write(tmp_path, THREE_DEFECTS)
    with pytest.raises(SpecError) as info:
        load_pilot(path)
    exc = info.value
    assert [issue.line for issue in exc.errors] == [
        _line_of(THREE_DEFECTS, "unit: shop"),
        _line_of(THREE_DEFECTS, "city"),
        _line_of(THREE_DEFECTS, "alpha: 0.6"),
    ]
    assert [issue.path for issue in exc.errors] == [
        ("unit",),
        ("design", "stratify_by", 1),
        ("decision", "alpha"),
    ]
    lines = str(exc).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}:") for line in lines)


def test_cross_field_errors_are_reported_together(tmp_path: Path) -> None:
    text = _variant(
        ("{start: 2026-03-30, weeks: 12}", "{start: 2026-03-23, weeks: 12}"),
        ("method: matched", "method: complete"),
        ("metric: gross_margin_rate", "metric: sales"),
        ("{name: national}", "{name: north}"),
    )
    with pytest.raises(SpecError) as info:
        load_pilot(_write(tmp_path, text))
    assert [issue.path for issue in info.value.errors] == [
        ("test_period", "start"),
        ("design", "stratify_by"),
        ("metrics", "guardrails", 0, "metric"),
        ("rollout", "waves", 1, "name"),
    ]


def test_pilot_and_programme_errors_come_together(tmp_path: Path) -> None:
    bad_programme = DATA / "bad_programmes" / "zero-points-threshold.yaml"
    text = _variant(
        ("alpha: 0.05", "alpha: 0.6"),
        ("PROGRAMMES/architecture-example.yaml", "missing.yaml"),
        ("PROGRAMMES/gift-catalogue.yaml", str(bad_programme)),
    )
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_pilot(path)
    errors = info.value.errors
    assert [(e.file, e.line) for e in errors] == [
        (str(path), _line_of(text, "missing.yaml")),
        (str(path), _line_of(text, "alpha: 0.6")),
        (str(bad_programme), 9),
    ]
    assert errors[0].path == ("arms", "cash")
    assert errors[0].reason.startswith("file missing.yaml not found")
    assert "rewards.0.points: must be greater than 0" in str(info.value).splitlines()[2]


# --------------------------------------------------------------------------- data checks

CHAIN = {
    "data_start": dt.date(2024, 1, 1),
    "data_end": dt.date(2025, 12, 28),
    "n_eligible": 48,
    "regions": SYNTHETIC_REGIONS,
}
LATER = {"data_end": dt.date(2026, 3, 29)}  # the data of the BASE pilot's pre-period


def _data_issues(pf, **changes) -> list:
    with pytest.raises(SpecError) as info:
        check_against_data(pf, **{**CHAIN, **changes})
    return info.value.errors


def test_the_example_passes_the_data_checks() -> None:
    check_against_data(load_pilot(EXAMPLE), **CHAIN)


def test_pre_period_outside_the_data() -> None:
    pf = load_pilot(EXAMPLE)
    start, end = _data_issues(pf, data_start=dt.date(2024, 1, 3), data_end=dt.date(2025, 9, 30))
    assert start.path == ("pre_period", "start")
    assert "2024-01-01 is before the first basket (2024-01-03)" in start.reason
    assert "the first Monday is 2024-01-08" in start.reason
    assert end.path == ("pre_period", "end")
    assert "2025-10-05 is after the last basket (2025-09-30)" in end.reason
    assert (start.line, start.col) == pf.lines[("pre_period", "start")]


def test_a_test_period_in_the_future_is_fine() -> None:
    pf = load_pilot(EXAMPLE)
    check_against_data(pf, **{**CHAIN, "data_end": dt.date(2025, 10, 5)})


def test_not_enough_eligible_units() -> None:
    pf = load_pilot(EXAMPLE)
    (issue,) = _data_issues(pf, n_eligible=20)
    assert issue.path == ("design", "units_per_arm")
    assert issue.reason == "8 per arm x 3 arms = 24 units needed, only 20 eligible stores"
    assert issue.line == pf.lines[("design", "units_per_arm")][0]
    check_against_data(pf, **{**CHAIN, "n_eligible": 24})


def test_not_enough_units_for_the_power_analysis(tmp_path: Path) -> None:
    pf = load_pilot(_write(tmp_path, _variant(("  units_per_arm: 8\n", ""))))
    (issue,) = _data_issues(pf, **LATER, n_eligible=10)
    assert issue.path == ("power", "units_per_arm")
    assert "even the smallest size, 4 per arm x 3 arms = 12 units" in issue.reason
    (issue,) = _data_issues(pf, **LATER, n_eligible=5)
    assert issue.path == ("design",)
    assert "at least 2 per arm x 3 arms = 6 units needed, only 5 eligible stores" in issue.reason
    check_against_data(pf, **{**CHAIN, **LATER, "n_eligible": 12})


def test_not_enough_clusters(tmp_path: Path) -> None:
    text = _variant(
        (METHOD_LINES, "  method: cluster\n  cluster_by: region\n"),
        ("units_per_arm: 8", "units_per_arm: 2"),
    )
    pf = load_pilot(_write(tmp_path, text))
    (issue,) = _data_issues(pf, **LATER)
    assert issue.path == ("design", "units_per_arm")
    assert "2 per arm x 3 arms = 6 units needed, only 5 clusters (regions)" in issue.reason
    check_against_data(pf, **{**CHAIN, **LATER, "regions": (*SYNTHETIC_REGIONS, "alpes")})


def test_not_enough_regions_for_a_synthetic_region_design(tmp_path: Path) -> None:
    text = _variant(
        (
            METHOD_LINES + "  units_per_arm: 8\n",
            "  method: synthetic_region\n  treated_regions: 2\n",
        )
    )
    pf = load_pilot(_write(tmp_path, text))
    (issue,) = _data_issues(pf, **LATER)
    assert issue.path == ("design", "treated_regions")
    assert "= 6 regions needed, the data has 5" in issue.reason
    check_against_data(pf, **{**CHAIN, **LATER, "regions": (*SYNTHETIC_REGIONS, "alpes")})


def test_unknown_and_forgotten_rollout_regions(tmp_path: Path) -> None:
    text = _variant(("{name: national}", "{name: south, regions: [suth, east]}"))
    pf = load_pilot(_write(tmp_path, text))
    unknown, left = _data_issues(pf, **LATER)
    assert unknown.path == ("rollout", "waves", 1, "regions", 0)
    assert "unknown region 'suth' (did you mean 'south'?)" in unknown.reason
    assert left.path == ("rollout", "waves")
    assert "regions centre, south, west are in no wave" in left.reason


def test_unknown_excluded_units_and_store_attributes(tmp_path: Path) -> None:
    text = _variant(
        ("design:\n", "eligibility: {exclude: [S001, S100]}\ndesign:\n"),
        ("stratify_by: [region]", "stratify_by: [region, format]"),
    )
    pf = load_pilot(_write(tmp_path, text))
    units = [f"S{i:03d}" for i in range(1, 49)]
    excluded, attribute = _data_issues(pf, **LATER, units=units, attributes=["region"])
    assert excluded.path == ("eligibility", "exclude", 1)
    assert "unknown store 'S100'" in excluded.reason
    assert attribute.path == ("design", "stratify_by", 1)
    assert "the stores have no 'format' in this workspace" in attribute.reason


def test_every_data_problem_at_once() -> None:
    pf = load_pilot(EXAMPLE)
    issues = _data_issues(
        pf, data_start=dt.date(2024, 2, 1), n_eligible=3, regions=("north", "centre")
    )
    assert [i.path for i in issues] == [
        ("pre_period", "start"),
        ("design", "units_per_arm"),
        ("rollout", "waves", 1, "regions", 0),
        ("rollout", "waves", 1, "regions", 1),
    ]


def test_pilot_file_error_points_at_the_key() -> None:
    pf = load_pilot(EXAMPLE)
    text = EXAMPLE.read_text(encoding="utf-8")
    exc = pf.error(("design", "seed"), "seed 7 is already used by another pilot")
    assert isinstance(exc, SpecError)
    (issue,) = exc.errors
    assert issue.line == _line_of(text, "seed: 7")
    assert str(exc) == (
        f"{EXAMPLE}:{issue.line}:3: design.seed: seed 7 is already used by another pilot"
    )
    # a key left to its default: the line of its parent, the full key path in the message
    missing = pf.error(("design", "acceptance"), "x").errors[0]
    assert missing.line == _line_of(text, "design:")
    assert missing.format().endswith("design.acceptance: x")


# --------------------------------------------------------------------------- schema


def test_json_schema_is_valid_json_with_the_keys() -> None:
    schema = json.loads(json.dumps(pilot_json_schema()))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "loyalty-pilot pilot"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "pilot",
        "description",
        "arms",
        "unit",
        "pre_period",
        "test_period",
        "eligibility",
        "design",
        "power",
        "metrics",
        "decision",
        "rollout",
        "evaluation",
    }
    assert set(schema["required"]) == {"pilot", "arms", "pre_period", "test_period", "design"}
    design = schema["$defs"]["Design"]
    assert design["properties"]["method"]["enum"] == list(DESIGN_METHODS)
    assert design["required"] == ["seed"]


@pytest.mark.parametrize(
    ("decision", "key", "fragment"),
    [
        ("{prior: {mean: 0.01, sd: 0}}", ("decision", "prior"), "sd must be > 0"),
        ("{prior: {mean: 0.01, sd: -0.1}}", ("decision", "prior"), "sd must be > 0"),
        ("{horizon_months: 0}", ("decision", "horizon_months"), "at least 1"),
        ("{max_loss_probability: 1.0}", ("decision", "max_loss_probability"), "less than 1"),
        ("{max_loss_probability: 0}", ("decision", "max_loss_probability"), "greater than 0"),
        ("{rule: significance}", ("decision", "rule"), "expected_profit"),
        ("{loss_threshold: 0}", ("decision", "loss_threshold"), "greater than 0"),
    ],
)
def test_bad_money_decision_keys_are_named_at_their_line(tmp_path, decision, key, fragment):
    text = _variant(("decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}",
                     f"decision: {decision}"))  # fmt: skip
    file = _write(tmp_path, text)
    line = 1 + text.splitlines().index(f"decision: {decision}")
    with pytest.raises(SpecError) as info:
        load_pilot(file)
    issue = info.value.errors[0]
    assert issue.path[: len(key)] == key, str(info.value)
    assert issue.line == line, str(info.value)
    assert fragment in issue.reason, issue.reason


def test_the_money_decision_keys_load():
    text = _variant(("decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}",
                     "decision: {rule: interval, prior: {mean: 0.01, sd: 0.02}, horizon_months: 24,"
                     " loss_threshold: 50000, max_loss_probability: 0.05}"))  # fmt: skip
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        spec = load_pilot(_write(Path(folder), text)).spec
    assert spec.decision.rule == "interval"
    assert (spec.decision.prior.mean, spec.decision.prior.sd) == (0.01, 0.02)
    assert (spec.decision.horizon_months, spec.decision.loss_threshold) == (24, 50000.0)
    assert spec.decision.max_loss_probability == 0.05


def test_controls_all_is_refused_for_a_cluster_design(tmp_path):
    text = _variant(("decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}",
                     "decision: {alpha: 0.05, min_uplift: break_even, min_roi: 1.0}"))  # fmt: skip
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("design:"))
    block = [lines[at]]
    j = at + 1
    while j < len(lines) and lines[j].startswith("  "):
        j += 1
    lines[at:j] = ["design:", "  method: cluster", "  cluster_by: region", "  seed: 3",
                   "  controls: all"]  # fmt: skip
    _ = block
    with pytest.raises(SpecError) as info:
        load_pilot(_write(tmp_path, "\n".join(lines) + "\n"))
    issue = info.value.errors[0]
    assert issue.path == ("design", "controls"), str(info.value)
    assert "controls: all is for designs drawing units" in issue.reason
