"""``loyalty-pilot evaluate``: a panel file in, one line and one JSON object per arm out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from loyalty_pilot.experiments.evaluate import evaluate
from loyalty_pilot.pilots.cli import main
from loyalty_pilot.pilots.evaluate_file import comparison_line

CONTRACT = [
    "arm",
    "baseline",
    "metric",
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "relative",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "n_units",
    "status",
]
TOP = ["method", "metric", "alpha", "arms", "control", "n_units", "comparisons"]
FIRST_DAY = pd.Timestamp("2026-01-05")
START = "2026-02-16"  # the seventh week
N_WEEKS = 9


def make_frame(per_arm: int = 4, arms=("control", "cash", "gift"), seed: int = 1) -> pd.DataFrame:
    """Store x week panel with ISO-date weeks; cash +5 and gift +1 from START on."""
    rng = np.random.default_rng(seed)
    effects = {"cash": 5.0, "gift": 1.0, "treatment": 3.0}
    rows = []
    for k in range(per_arm * len(arms)):
        arm = arms[k % len(arms)]
        level = 100 + 20 * rng.normal()
        for t in range(N_WEEKS):
            day = FIRST_DAY + pd.Timedelta(weeks=t)
            effect = effects.get(arm, 0.0) if day >= pd.Timestamp(START) else 0.0
            rows.append(
                {
                    "store_id": f"S{k:02d}",
                    "arm": arm,
                    "region": "north" if k % 2 else "south",
                    "week": day.date().isoformat(),
                    "sales": round(level + 2 * t + effect + rng.normal(), 2),
                }
            )
    return pd.DataFrame(rows)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def invoke(path: Path, *extra: str, start: str = START, json_path: Path | None = None):
    args = ["evaluate", "--data", str(path), "--unit", "store_id", "--arm", "arm"]
    args += ["--outcome", "sales", "--period", "week", "--start", start, *extra]
    if "--scale" not in extra:
        args += ["--scale", "level"]  # the estimators' own scale (auto is tested apart)
    if json_path is not None:
        args += ["--json", str(json_path)]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def api(frame: pd.DataFrame, **kw):
    """The Python API on the same data, dates parsed by hand."""
    panel = frame.assign(week=pd.to_datetime(frame["week"]).dt.date)
    assignment = frame.groupby("store_id")["arm"].first()
    return evaluate(
        panel,
        assignment,
        unit="store_id",
        period="week",
        outcome="sales",
        start=pd.Timestamp(START).date(),
        **{"scale": "level", **kw},
    )


def as_json(evaluation) -> dict:
    return json.loads(json.dumps(evaluation.to_dict(), default=str))


@pytest.mark.parametrize("method", ["did", "ancova", "ri", "synthetic_control", "event_study"])
def test_csv_file_gives_the_python_api_figures(tmp_path, method):
    frame = make_frame()
    out = tmp_path / "evaluation.json"
    result = invoke(write(frame, tmp_path / "panel.csv"), "--method", method, json_path=out)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert list(payload) == TOP
    assert payload["arms"] == ["control", "cash", "gift"]
    assert payload["method"] == method
    assert [c["arm"] for c in payload["comparisons"]] == ["cash", "gift"]
    expected = api(frame, method=method, **({"rng": 0} if method == "ri" else {}))
    for comparison, reference in zip(payload["comparisons"], expected.comparisons, strict=True):
        assert list(comparison)[:13] == CONTRACT
        assert set(comparison) == set(CONTRACT) | {"alpha"} | set(reference.extras)
        assert comparison["baseline"] == "control"
        assert comparison["n_units"] == 8
    assert payload == as_json(expected)
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[1:] == [comparison_line(c) for c in expected.comparisons]
    cash = expected.comparisons[0]
    assert lines[1].startswith(f"cash vs control: estimate {cash.estimate:.4g} [")


def test_parquet_equals_csv(tmp_path):
    frame = make_frame()
    csv_json, parquet_json = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(write(frame, tmp_path / "p.csv"), json_path=csv_json).exit_code == 0
    dated = frame.assign(week=pd.to_datetime(frame["week"]))  # a real date column
    result = invoke(write(dated, tmp_path / "p.parquet"), json_path=parquet_json)
    assert result.exit_code == 0, result.output
    assert json.loads(parquet_json.read_text()) == json.loads(csv_json.read_text())


def test_did_estimate_is_the_difference_in_differences_of_means(tmp_path):
    frame = make_frame()
    out = tmp_path / "e.json"
    assert invoke(write(frame, tmp_path / "p.csv"), json_path=out).exit_code == 0
    post = frame["week"] >= START
    means = frame.groupby(["arm", post])["sales"].mean()
    for comparison in json.loads(out.read_text())["comparisons"]:
        arm = comparison["arm"]
        by_hand = (means[arm, True] - means[arm, False]) - (
            means["control", True] - means["control", False]
        )
        assert comparison["estimate"] == pytest.approx(by_hand, rel=1e-9)
        assert comparison["status"] == "ok"


def test_synthetic_control_json_has_weights(tmp_path):
    frame = make_frame()
    out = tmp_path / "sc.json"
    result = invoke(
        write(frame, tmp_path / "p.csv"), "--method", "synthetic_control", json_path=out
    )
    assert result.exit_code == 0, result.output
    for comparison in json.loads(out.read_text())["comparisons"]:
        assert sorted(comparison["weights"]) == ["S00", "S03", "S06", "S09"]
        assert sum(comparison["weights"].values()) == pytest.approx(1.0, abs=1e-5)
        assert comparison["gaps"][0]["period"] == "2026-01-05"


def test_event_study_json_has_rows_and_pre_trend(tmp_path):
    frame = make_frame()
    out = tmp_path / "es.json"
    result = invoke(write(frame, tmp_path / "p.csv"), "--method", "event_study", json_path=out)
    assert result.exit_code == 0, result.output
    comparison = json.loads(out.read_text())["comparisons"][0]
    assert [row["event_time"] for row in comparison["event_study"]] == list(range(-6, 3))
    assert "pre_trend_p_value" in comparison
    p = comparison["pre_trend_p_value"]
    assert p is None or 0 <= p <= 1


def test_zero_one_arms_and_control_one(tmp_path):
    frame = make_frame(arms=("control", "treatment"))
    coded = frame.assign(arm=(frame["arm"] == "treatment").astype(int))
    path = write(coded, tmp_path / "p.csv")
    out, flipped = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(path, json_path=out).exit_code == 0
    assert invoke(path, "--control", "1", json_path=flipped).exit_code == 0
    payload = json.loads(out.read_text())
    assert payload["arms"] == ["control", "treatment"]
    assert payload["comparisons"] == as_json(api(frame))["comparisons"]
    estimate = payload["comparisons"][0]["estimate"]
    assert estimate == pytest.approx(3.0, abs=1.5)
    assert json.loads(flipped.read_text())["comparisons"][0]["estimate"] == pytest.approx(-estimate)


def test_numeric_and_text_periods(tmp_path):
    frame = make_frame()
    weeks = {w: i for i, w in enumerate(sorted(frame["week"].unique()))}
    numeric = frame.assign(week=frame["week"].map(weeks))
    text = frame.assign(week="P" + numeric["week"].astype(str))
    reference = tmp_path / "r.json"
    assert invoke(write(frame, tmp_path / "d.csv"), json_path=reference).exit_code == 0
    expected = json.loads(reference.read_text())["comparisons"][0]["estimate"]
    for name, table, start in (("n.csv", numeric, "6"), ("n2.csv", numeric, "5.5")):
        out = tmp_path / f"{name}.json"
        result = invoke(write(table, tmp_path / name), start=start, json_path=out)
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["comparisons"][0]["estimate"] == pytest.approx(expected)
    out = tmp_path / "t.json"
    assert invoke(write(text, tmp_path / "t.csv"), start="P6", json_path=out).exit_code == 0
    assert json.loads(out.read_text())["comparisons"][0]["estimate"] == pytest.approx(expected)


def test_ri_stratified_by_column(tmp_path):
    frame = make_frame(per_arm=6)
    out = tmp_path / "ri.json"
    extra = ("--method", "ri", "--design", "stratified", "--strata", "region", "--seed", "4")
    result = invoke(write(frame, tmp_path / "p.csv"), *extra, json_path=out)
    assert result.exit_code == 0, result.output
    expected = api(frame, method="ri", design="stratified", strata="region", rng=4)
    payload = json.loads(out.read_text())
    assert payload == as_json(expected)
    assert payload["comparisons"][0]["design"] == "stratified"


@pytest.mark.parametrize("method", ["did", "ancova", "ri", "synthetic_control", "event_study"])
def test_no_pre_period_is_a_status_not_a_crash(tmp_path, method):
    out = tmp_path / "e.json"
    path = write(make_frame(), tmp_path / "p.csv")
    result = invoke(path, "--method", method, start="2026-01-05", json_path=out)
    assert result.exit_code == 0, result.output
    statuses = [c["status"] for c in json.loads(out.read_text())["comparisons"]]
    assert statuses == ["no_pre_period", "no_pre_period"]
    assert "status no_pre_period (no period before the start" in result.output


def test_an_arm_with_one_unit_is_a_status(tmp_path):
    frame = make_frame()
    frame = frame[(frame["arm"] != "gift") | (frame["store_id"] == "S02")]
    out = tmp_path / "e.json"
    result = invoke(write(frame, tmp_path / "p.csv"), json_path=out)
    assert result.exit_code == 0, result.output
    gift = json.loads(out.read_text())["comparisons"][1]
    assert gift["status"] == "one_unit_per_arm"
    assert gift["n_units"] == 5
    assert gift["p_value"] is None


def bad_value(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("edit", "extra", "message"),
    [
        (
            lambda f: f.drop(columns="sales"),
            (),
            "p.csv: no column 'sales' (columns: store_id, arm,",
        ),
        (
            lambda f: f,
            ("--strata", "zone", "--design", "stratified", "--method", "ri"),
            "no column 'zone'",
        ),
        (
            lambda f: bad_value(f, 4, "sales", "12,5x"),
            (),
            "p.csv:6: column 'sales': '12,5x' is not",
        ),
        (lambda f: bad_value(f, 10, "sales", None), (), "p.csv:12: column 'sales' is empty"),
        (
            lambda f: bad_value(f, 3, "arm", "gift"),
            (),
            "p.csv:5: unit 'S00' is in two arms: 'control' (line 2) and 'gift' (line 5)",
        ),
        (lambda f: bad_value(f, 3, "arm", None), (), "p.csv:5: column 'arm' is empty"),
        (
            lambda f: f,
            ("--start", "2027-01-01"),
            "--start '2027-01-01' is not within the periods of column 'week' "
            "(2026-01-05 to 2026-03-02)",
        ),
        (lambda f: f, ("--start", "2025-12-01"), "is not within the periods"),
        (lambda f: f, ("--start", "soon"), "--start 'soon': column 'week' holds dates"),
        (
            lambda f: f,
            ("--control", "placebo"),
            "--control 'placebo' is not an arm of column 'arm' (arms: 'control', 'cash', 'gift')",
        ),
        (
            lambda f: f.assign(arm=f["arm"].replace("control", "ctl")),
            (),
            "column 'arm' has no arm 'control': name the control arm with --control",
        ),
        (lambda f: f.assign(arm="control"), (), "only the control arm 'control'"),
        (
            lambda f: pd.concat([f, f.iloc[[9]]]),
            (),
            "p.csv:110: unit 'S01' has a second row for week '2026-01-05' (first at line 11)",
        ),
        (lambda f: f.drop(index=20), (), "the panel is not balanced"),
        (lambda f: f, ("--design", "stratified", "--method", "ri"), "needs --strata COLUMN"),
        (lambda f: f, ("--design", "paired"), "apply to --method ri"),
        (
            lambda f: bad_value(f, 12, "region", "east"),
            ("--method", "ri", "--design", "stratified", "--strata", "region"),
            "unit 'S01' has two values in column 'region'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_error_line(tmp_path, edit, extra, message):
    path = write(edit(make_frame()), tmp_path / "p.csv")
    start = [e for i, e in enumerate(extra) if i and extra[i - 1] == "--start"]
    others = [e for i, e in enumerate(extra) if e != "--start" and e not in start]
    result = invoke(path, *others, start=start[0] if start else START)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert message in lines[0]


def test_numeric_start_against_numeric_periods_must_be_a_number(tmp_path):
    frame = make_frame()
    weeks = {w: i for i, w in enumerate(sorted(frame["week"].unique()))}
    path = write(frame.assign(week=frame["week"].map(weeks)), tmp_path / "n.csv")
    result = invoke(path, start="2026-02-16")
    assert result.exit_code == 2
    assert "Error: --start '2026-02-16': column 'week' holds numbers" in result.output
    result = invoke(path, start="9")
    assert result.exit_code == 2
    assert "(0 to 8)" in result.output


def test_zero_one_arms_reject_other_control(tmp_path):
    frame = make_frame(arms=("control", "treatment"))
    path = write(frame.assign(arm=(frame["arm"] == "treatment").astype(int)), tmp_path / "p.csv")
    result = invoke(path, "--control", "treatment")
    assert result.exit_code == 2
    assert "--control 'treatment': column 'arm' holds 0/1 arms" in result.output


def test_missing_and_unknown_files(tmp_path):
    result = invoke(tmp_path / "nope.csv")
    assert result.exit_code == 2
    assert f"Error: {tmp_path / 'nope.csv'}: no such file" in result.output
    other = tmp_path / "panel.xlsx"
    other.write_text("x")
    result = invoke(other)
    assert result.exit_code == 2
    assert "unknown file type" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(main, ["evaluate", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    flat = " ".join(result.output.split())
    for method in ("did", "ancova", "ri", "synthetic_control", "event_study", "staggered",
                   "welch", "ratio", "cuped", "proportion"):  # fmt: skip
        assert method in flat
    assert "[PILOT.yaml]" in flat


def test_staggered_file_mode_reproduces_the_minimum_wage_example(tmp_path):
    data = Path(__file__).parents[1] / "data" / "mpdta.csv"
    out = tmp_path / "s.json"
    result = CliRunner().invoke(
        main,
        ["evaluate", "--data", str(data), "--unit", "countyreal", "--arm", "first_treat",
         "--outcome", "lemp", "--period", "year", "--method", "staggered", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["overall"]["att"] == pytest.approx(-0.039951, abs=1e-6)
    # the small-sample (t) inference: R's analytic SE 0.012034 with the HC2 factor of the
    # waves' within-group parts (waves of 20 to 131 counties), so slightly larger
    assert payload["inference"] == "t"
    assert 0.012034 < payload["overall"]["se"] < 0.0123
    assert payload["overall"]["df"] > 30
    cells = {(r["group"], r["time"]): r["att"] for r in payload["att_gt"]}
    assert cells[(2004, 2004)] == pytest.approx(-0.0105, abs=5e-5)
    assert cells[(2004, 2006)] == pytest.approx(-0.1373, abs=5e-5)
    assert [c["arm"] for c in payload["comparisons"]] == [
        "wave 2004", "wave 2006", "wave 2007", "overall"
    ]  # fmt: skip
    assert "dynamic" in payload
    assert "by_group" in payload


def test_staggered_file_mode_with_dates_and_a_bad_first_period(tmp_path):
    rows = []
    for unit, first in (("a", "2024-01-15"), ("b", "0"), ("c", "2024-01-22"), ("d", "0")):
        for k, week in enumerate(("2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22")):
            effect = 2.0 if first != "0" and week >= first else 0.0
            rows.append(f"{unit},{week},{first},{10 + k + effect + (unit in 'bd')}")
    path = tmp_path / "p.csv"
    path.write_text("store,week,first,sales\n" + "\n".join(rows) + "\n")
    args = ["evaluate", "--data", str(path), "--unit", "store", "--arm", "first",
            "--outcome", "sales", "--period", "week", "--method", "staggered"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o.json").read_text())["overall"]["att"] == pytest.approx(2.0)
    path.write_text(path.read_text().replace("2024-01-22,1", "2024-02-22,1"))
    bad = CliRunner().invoke(main, args)
    assert bad.exit_code == 2
    assert "is not a period of column 'week'" in bad.output


def test_customer_methods_in_file_mode(tmp_path):
    import numpy as np
    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(3)
    n = 600
    arm = np.array(["control", "cash", "gift"] * (n // 3))
    pre = rng.gamma(2, 50, n)
    revenue = 0.8 * pre + rng.gamma(2, 20, n) + np.where(arm == "cash", 15.0, 0.0)
    frame = pd.DataFrame({"customer": np.arange(n), "arm": arm, "revenue": revenue,
                          "pre": pre, "back": (rng.random(n) < 0.4).astype(int)})  # fmt: skip
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "w.json"
    base = ["evaluate", "--data", str(path), "--arm", "arm"]
    result = CliRunner().invoke(
        main, [*base, "--outcome", "revenue", "--method", "welch", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    pairs = [(c["arm"], c["baseline"]) for c in payload["comparisons"]]
    assert pairs == [("cash", "control"), ("gift", "control"), ("gift", "cash")]
    first = payload["comparisons"][0]
    expected = stats.ttest_ind(revenue[arm == "cash"], revenue[arm == "control"], equal_var=False)
    assert first["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert payload["srm_p_value"] == pytest.approx(1.0)  # exactly equal arms
    assert "p Holm" in result.output
    cuped = CliRunner().invoke(main, [*base, "--outcome", "revenue", "--method", "cuped"])
    assert cuped.exit_code == 2
    assert "--covariate" in cuped.output
    shown = CliRunner().invoke(
        main, [*base, "--outcome", "back", "--method", "proportion", "--unit", "customer"]
    )
    assert shown.exit_code == 0, shown.output
    frame.loc[5, "customer"] = 0
    frame.to_csv(path, index=False)
    twice = CliRunner().invoke(
        main, [*base, "--outcome", "revenue", "--method", "welch", "--unit", "customer"]
    )
    assert twice.exit_code == 2
    assert "c.csv:7:" in twice.output
    assert "appears twice" in twice.output


def test_synthetic_control_with_ten_treated_stores_keeps_its_level(tmp_path):
    """A/A through the command line: 10 treated and 10 control stores, no effect, 20
    seeded panels. Against single-store placebos the average of 10 stores was rejected in
    20 of 20; the placebos are now averages of 10 stores too (``placebo: reassignment``)."""
    rejected = 0
    for seed in range(20):
        rng = np.random.default_rng(500 + seed)
        trend = np.cumsum(rng.normal(size=N_WEEKS))
        rows = []
        for k in range(20):
            level, loading = 100 + 20 * rng.normal(), 1 + 0.3 * rng.normal()
            noise = 0.0
            for t in range(N_WEEKS):
                noise = 0.5 * noise + rng.normal()
                day = FIRST_DAY + pd.Timedelta(weeks=t)
                rows.append({"store_id": f"S{k:02d}", "arm": "treatment" if k < 10 else "control",
                             "week": day.date().isoformat(),
                             "sales": level + 3 * loading * trend[t] + 2 * noise})  # fmt: skip
        out = tmp_path / f"sc{seed}.json"
        path = write(pd.DataFrame(rows), tmp_path / f"aa{seed}.csv")
        result = invoke(path, "--method", "synthetic_control", json_path=out)
        assert result.exit_code == 0, result.output
        (comparison,) = json.loads(out.read_text())["comparisons"]
        assert comparison["placebo"] == "reassignment"
        rejected += comparison["p_value"] <= 0.05
    assert rejected <= 3
