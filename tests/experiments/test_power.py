"""Power by placebo pilots: the vectorized estimators pinned to the evaluation's own.

Every placebo's estimate, standard error, degrees of freedom and p-value equal ``did``
(CR2, Bell-McCaffrey df), ``ancova`` (HC2) and ``randomization_inference`` called on that
placebo's panel, with and without an injected effect (1e-9), as the total-sales ratio
equals ``ratio_did``, with equal arms and with every other unit as control. The
false-positive rate of placebo pilots stays in [3.5 %, 6.5 %] at alpha 5 % on a synthetic
chain and on i.i.d. data, and on an i.i.d. panel the simulated power matches the exact
noncentral t power.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments import _power_kernels as kernels
from loyalty_pilot.experiments.did import ancova, did
from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.power import (
    PowerCell,
    PowerTable,
    analytic_mde,
    complete_draw,
    placebo_power,
    placebo_sample,
)
from loyalty_pilot.experiments.randomization import randomization_inference


def chain_like(n_units: int = 60, n_periods: int = 80, seed: int = 0) -> np.ndarray:
    """Positive sales: lognormal store sizes, seasonality, store trends, AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_periods)
    size = np.exp(rng.normal(8.0, 0.8, (n_units, 1)))
    season = 1.0 + 0.15 * np.sin(2 * np.pi * t / 52)
    trend = np.exp(rng.normal(0.0, 0.05, (n_units, 1)) * t / 52)
    noise = np.zeros((n_units, n_periods))
    eps = rng.normal(0.0, 0.06, (n_units, n_periods))
    for k in range(n_periods):
        noise[:, k] = (0.5 * noise[:, k - 1] if k else 0.0) + eps[:, k]
    return size * season * trend * np.exp(noise)


def iid_panel(n_units: int, n_periods: int, seed: int, sd: float = 0.1) -> np.ndarray:
    """Levels whose logs are i.i.d. normal around a common mean."""
    return np.exp(np.random.default_rng(seed).normal(3.0, sd, (n_units, n_periods)))


def panel_of(sample, y: np.ndarray, j: int, scale: str, effect: float = 0.0) -> PanelData:
    """Placebo ``j`` of ``sample`` as the evaluation sees it, ``effect`` (relative) injected."""
    s, pre, weeks, n1 = sample.starts[j], sample.pre_weeks, sample.weeks, sample.per_arm
    window = y[sample.units[j], s - pre : s + weeks].copy()
    treated = np.arange(2 * n1) < n1
    post = np.arange(pre + weeks) >= pre
    window[np.ix_(treated, post)] *= 1.0 + effect
    values = np.log(window) if scale == "log" else window
    # shuffle the rows: the estimators must not depend on the treated units coming first
    order = np.random.default_rng(j).permutation(2 * n1)
    return PanelData(values[order], np.arange(2 * n1), np.arange(pre + weeks), treated[order], post)


def close(value: float, expected: float) -> bool:
    return value == pytest.approx(expected, rel=1e-9, abs=1e-12)


# -- pinned to did() / ancova() / randomization_inference() --------------------------------


@pytest.mark.parametrize("scale", ["log", "level"])
@pytest.mark.parametrize("per_arm", [3, 8])
def test_did_matches_did_on_every_placebo(scale, per_arm):
    y = chain_like()
    sample = placebo_sample(y, per_arm=per_arm, weeks=6, pre_weeks=20, n_placebos=6, rng=1,
                            scale=scale)  # fmt: skip
    for j in range(6):
        result = did(panel_of(sample, y, j, scale))
        assert result.status == "ok"
        assert close(sample.estimate[j], result.estimate)
        assert close(sample.se[j], result.extras["se"])
        assert close(sample.df[j], result.extras["df"])
        assert close(sample.p_value[j], result.p_value)
    assert sample.df[0] == pytest.approx(2 * per_arm - 2)


@pytest.mark.parametrize("scale", ["log", "level"])
def test_ancova_matches_ancova_on_every_placebo(scale):
    y = chain_like()
    sample = placebo_sample(y, per_arm=5, weeks=8, pre_weeks=16, n_placebos=6, rng=2,
                            estimator="ancova", scale=scale)  # fmt: skip
    for j in range(6):
        result = ancova(panel_of(sample, y, j, scale))
        assert result.status == "ok"
        assert close(sample.estimate[j], result.estimate)
        assert close(sample.se[j], result.extras["se"])
        assert close(sample.df[j], result.extras["df"])
        assert close(sample.p_value[j], result.p_value)


@pytest.mark.parametrize("estimator", ["did", "ancova"])
@pytest.mark.parametrize("scale", ["log", "level"])
def test_injected_effect_moves_estimate_and_variance_as_a_refit(estimator, scale):
    """est(x) = est + slope x, se(x)^2 = se^2 + 2 var1 x + var2 x^2: equal to refitting."""
    y = chain_like(seed=3)
    rng = np.random.default_rng(4)
    n1 = 6
    history = kernels.History(np.log(y) if scale == "log" else y)
    placebos = kernels.Placebos.draw(history, n1, 8, 24, 5, complete_draw(len(y)), rng)
    fits = placebos.fit(estimator, scale, rng, 200)
    sample = placebo_sample(y, per_arm=n1, weeks=8, pre_weeks=24, n_placebos=1)
    fn = did if estimator == "did" else ancova
    for delta in (0.04, 0.3):
        x = math.log1p(delta) if scale == "log" else delta
        for j in range(5):
            sample = dataclass_with(sample, placebos, j)
            result = fn(panel_of(sample, y, 0, scale, effect=delta))
            assert close(fits.estimate[j] + fits.slope[j] * x, result.estimate)
            var = fits.se[j] ** 2 + 2 * fits.var1[j] * x + fits.var2[j] * x * x
            assert close(math.sqrt(var), result.extras["se"])
            assert close(fits.df[j], result.extras["df"])


def dataclass_with(sample, placebos, j):
    """A one-placebo sample holding placebo ``j`` of ``placebos`` (for ``panel_of``)."""
    import dataclasses

    return dataclasses.replace(
        sample, starts=placebos.starts[j : j + 1], units=placebos.units[j : j + 1]
    )


def test_rejections_count_the_t_tests_exactly():
    """The power curve from the roots equals counting p <= alpha at each effect."""
    from scipy import stats

    y = chain_like(seed=5)
    rng = np.random.default_rng(6)
    cases = [("did", "log", 4), ("did", "level", 8), ("ancova", "level", 8), ("did", "level", 3)]
    for estimator, scale, per_arm in cases:
        history = kernels.History(np.log(y) if scale == "log" else y)
        draw = complete_draw(len(y))
        placebos = kernels.Placebos.draw(history, per_arm, 8, 20, 400, draw, rng)
        fits = placebos.fit(estimator, scale, rng, 200)
        rejections = kernels.Rejections(fits, 0.05)

        def direct(x, fits=fits):
            est = fits.estimate + fits.slope * x
            se = np.sqrt(fits.se**2 + 2 * fits.var1 * x + fits.var2 * x * x)
            return np.mean(2 * stats.t.sf(np.abs(est) / se, fits.df) <= 0.05)

        for x in (0.0, 0.01, 0.05, 0.1, 0.3, 1.0):
            assert rejections.power(x) == pytest.approx(direct(x), abs=1.5 / 400)
        mde = rejections.smallest(0.8)
        if per_arm == 3:  # level scale, 3 stores of very different sizes: out of reach
            assert mde == math.inf
            assert direct(1e3) < 0.8
            assert rejections.power(1e3) < 0.8
            continue
        assert rejections.power(mde) >= 0.8
        assert direct(mde * (1 + 1e-9)) >= 0.8 - 1 / 400
        assert direct(mde * (1 - 1e-7)) < 0.8


def test_ri_matches_randomization_inference_when_enumerated():
    y = chain_like(seed=7)
    sample = placebo_sample(y, per_arm=4, weeks=8, pre_weeks=20, n_placebos=5, rng=8,
                            estimator="ri")  # fmt: skip
    for j in range(5):
        data = panel_of(sample, y, j, "log")
        result = randomization_inference(data, n_draws=200, exact_max=200)
        assert result.extras["exact"]
        assert close(sample.estimate[j], result.estimate)
        assert close(sample.p_value[j], result.p_value)


@pytest.mark.parametrize("scale", ["log", "level"])
def test_ri_kernel_matches_randomization_inference_with_the_same_draws(scale):
    """Sampled RI: the same assignment matrix gives the same p-value, with an effect too."""
    y = chain_like(seed=9)
    n1, pre, weeks, n_draws = 10, 20, 8, 300
    sample = placebo_sample(y, per_arm=n1, weeks=weeks, pre_weeks=pre, n_placebos=3, rng=10)
    for j in range(3):
        for delta in (0.0, 0.05):
            one = dataclass_with(sample, sample, j)
            data = panel_of(one, y, 0, scale, effect=delta)
            result = randomization_inference(data, n_draws=n_draws, exact_max=0, rng=11)
            # randomization_inference's assignments: the observed one, then permuted rows
            generator = np.random.default_rng(11)
            base = np.zeros(2 * n1)
            base[:n1] = 1.0
            draws = np.empty((n_draws + 1, 2 * n1))
            draws[0] = data.treated
            draws[1:] = generator.permuted(np.tile(base, (n_draws, 1)), axis=1)
            # the kernel wants the treated units first: reorder the panel's units
            order = np.argsort(~data.treated, kind="stable")
            zero = panel_of(one, y, 0, scale)
            means = (zero.y[:, zero.post].mean(axis=1), zero.y[:, ~zero.post].mean(axis=1))
            d = (means[0] - means[1])[order][None, :]
            g = means[0][order][None, :n1] if scale == "level" else None
            fits = kernels.ri_placebos(d, n1, draws[:, order][None], g)
            x = math.log1p(delta) if scale == "log" else delta
            assert close(fits.a[0, 0] + x * fits.b[0, 0], result.estimate)
            assert close(float(fits.p_value(x)[0]), result.p_value)


def test_welch_df_for_unequal_arms_matches_did():
    y = chain_like(seed=12)
    d = y[:9, 20:28].mean(axis=1) - y[:9, :20].mean(axis=1)
    fits = kernels.did_placebos(d[None, :], 3)
    treated = np.arange(9) < 3
    result = did(PanelData(y[:9, :28], np.arange(9), np.arange(28), treated,
                           np.arange(28) >= 20))  # fmt: skip
    assert close(fits.df[0], result.extras["df"])
    assert close(fits.se[0], result.extras["se"])
    assert close(fits.p_value[0], result.p_value)


# -- validity and power ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain_sales():
    """Store x week sales of a modest synthetic chain (60 stores, 104 weeks)."""
    from loyalty_pilot.pilots.synthetic import generate

    chain = generate(stores=60, regions=4, customers=12_000, weeks=104, seed=1)
    b = chain.baskets
    week = (b["date"].dt.normalize() - pd.Timestamp(chain.start)).dt.days // 7
    table = (
        b.groupby([b["store_id"], week.rename("week")])["amount"]
        .sum()
        .unstack(fill_value=0.0)
        .reindex(index=chain.stores["store_id"], columns=range(104), fill_value=0.0)
    )
    return table.to_numpy(dtype=float)


@pytest.mark.parametrize("estimator", ["did", "ri"])
def test_false_positive_rate_on_a_synthetic_chain(chain_sales, estimator):
    # 4,000 placebos per cell: binomial se 0.34 points, the band is about +-4.4 se
    table = placebo_power(chain_sales, sizes=[8, 12], weeks=[8, 12], pre_weeks=40,
                          n_placebos=4000, rng=7, estimator=estimator)  # fmt: skip
    for cell in table.cells:
        assert 0.035 <= cell.false_positive_rate <= 0.065, cell
        assert cell.n_degenerate == 0


@pytest.mark.parametrize("estimator", ["did", "ancova"])
@pytest.mark.parametrize("scale", ["log", "level"])
def test_false_positive_rate_on_iid_data(estimator, scale):
    y = iid_panel(300, 60, seed=13)
    table = placebo_power(y, sizes=[6, 12], weeks=[8], pre_weeks=30, n_placebos=4000, rng=14,
                          estimator=estimator, scale=scale)  # fmt: skip
    for cell in table.cells:
        assert 0.035 <= cell.false_positive_rate <= 0.065, cell
        assert cell.fpr_mc_se == pytest.approx(
            math.sqrt(cell.false_positive_rate * (1 - cell.false_positive_rate) / 4000)
        )


def test_simulated_power_agrees_with_the_noncentral_t_on_iid_data():
    """On i.i.d. data the DiD t-statistic is a pooled two-sample t: exact power known."""
    from scipy import stats

    n_placebos, per_arm, weeks, pre = 3000, 8, 10, 30
    y = iid_panel(400, 60, seed=15)
    logs = np.log(y)
    sd_d = logs.std(ddof=1) * math.sqrt(1 / pre + 1 / weeks)
    effect = 2.8 * sd_d * math.sqrt(2 / per_arm)  # about 80 % power
    table = placebo_power(y, sizes=[per_arm], weeks=[weeks], pre_weeks=pre,
                          n_placebos=n_placebos, rng=16, threshold=math.expm1(effect))  # fmt: skip
    cell = table.cells[0]
    df = 2 * per_arm - 2
    crit = stats.t.ppf(0.975, df)
    ncp = effect / (sd_d * math.sqrt(2 / per_arm))
    exact = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
    mc_se = math.sqrt(exact * (1 - exact) / n_placebos)
    assert abs(cell.power_at_threshold - exact) <= 3 * mc_se
    # the MDE, simulated and analytic, near the effect with 80 % power
    expected = (crit + stats.t.ppf(0.8, df)) * sd_d * math.sqrt(2 / per_arm)
    assert math.log1p(cell.mde) == pytest.approx(expected, rel=0.05)
    assert cell.analytic_mde == pytest.approx(cell.mde, rel=0.05)


def test_mde_falls_with_size_and_duration():
    y = iid_panel(300, 70, seed=17)
    table = placebo_power(y, sizes=[4, 8, 16], weeks=[4, 8, 16], pre_weeks=30, rng=18)
    mde = table.to_frame().pivot(index="per_arm", columns="weeks", values="mde").to_numpy()
    assert (np.diff(mde, axis=0) < 0).all()
    assert (np.diff(mde, axis=1) < 0).all()
    analytic = table.to_frame()["analytic_mde"].to_numpy()
    assert analytic == pytest.approx(table.to_frame()["mde"].to_numpy(), rel=0.1)


def test_all_estimators_and_scales_run_on_a_chain_like_panel():
    y = chain_like(n_units=80, n_periods=70, seed=19)
    for estimator in ("did", "ancova", "ri"):
        for scale in ("log", "level"):
            table = placebo_power(y, sizes=[4, 12], weeks=[8], pre_weeks=26, n_placebos=300,
                                  rng=20, estimator=estimator, scale=scale,
                                  threshold=0.05)  # fmt: skip
            frame = table.to_frame()
            assert len(frame) == 2
            assert (frame["mde"] > 0).all()
            assert frame["mde"].iloc[1] < frame["mde"].iloc[0]
            assert frame["power_at_threshold"].between(0, 1).all()


# -- API ------------------------------------------------------------------------------------


def make_table(mdes: dict[tuple[int, int], float], threshold: float | None = 0.03) -> PowerTable:
    cells = tuple(
        PowerCell(
            per_arm=s,
            weeks=w,
            mde=m,
            power_at_threshold=None,
            false_positive_rate=0.05,
            fpr_mc_se=0.007,
            analytic_mde=None,
            n_placebos=1000,
        )
        for (s, w), m in mdes.items()
    )
    return PowerTable(cells, 0.05, 0.8, "did", "log", 52, threshold)


def test_recommend_picks_the_smallest_design_or_none():
    table = make_table(
        {
            (4, 8): math.inf,
            (4, 16): 0.05,
            (8, 8): 0.029,
            (8, 16): 0.02,
            (16, 8): 0.01,
            (16, 16): math.nan,
        }
    )
    assert (table.recommend().per_arm, table.recommend().weeks) == (8, 8)
    assert (table.recommend(0.02).per_arm, table.recommend(0.02).weeks) == (8, 16)
    assert (table.recommend(0.06).per_arm, table.recommend(0.06).weeks) == (4, 16)
    assert table.recommend(0.005) is None
    with pytest.raises(ValueError, match="threshold"):
        make_table({(4, 8): 0.1}, threshold=None).recommend()
    with pytest.raises(ValueError, match="threshold"):
        table.recommend(-0.1)


def test_to_dict_is_json_ready():
    table = make_table({(4, 8): math.inf, (8, 8): 0.02, (16, 8): math.nan})
    out = table.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["cells"][0]["mde"] is None
    assert out["cells"][2]["mde"] is None
    assert out["recommended"] == {"per_arm": 8, "weeks": 8}
    frame = table.to_frame()
    assert list(frame["per_arm"]) == [4, 8, 16]
    assert "false_positive_rate" in frame.columns


def test_recommend_from_a_real_table_and_when_nothing_fits():
    y = chain_like(seed=21)
    table = placebo_power(y, sizes=[4, 8, 16], weeks=[8, 12], pre_weeks=20, n_placebos=400,
                          rng=22, threshold=0.5)  # fmt: skip
    chosen = table.recommend()
    assert chosen is not None
    assert (chosen.per_arm, chosen.weeks) == (4, 8)
    assert table.recommend(1e-4) is None
    json.dumps(table.to_dict(), allow_nan=False)


def test_same_seed_same_table_and_seeds_differ():
    y = chain_like(seed=23)
    kw = {"sizes": [4, 8], "weeks": [6, 10], "pre_weeks": 20, "n_placebos": 300}
    first = placebo_power(y, rng=24, **kw).to_dict()
    assert placebo_power(y, rng=24, **kw).to_dict() == first
    assert placebo_power(y, rng=np.random.default_rng(24), **kw).to_dict() == first
    assert placebo_power(y, rng=25, **kw).to_dict() != first
    ri = {**kw, "estimator": "ri", "sizes": [8]}
    assert placebo_power(y, rng=3, **ri).to_dict() == placebo_power(y, rng=3, **ri).to_dict()


def test_short_history_uses_the_pre_weeks_that_fit():
    y = chain_like(n_units=40, n_periods=30, seed=26)
    table = placebo_power(y, sizes=[4], weeks=[8, 20], pre_weeks=15, n_placebos=200, rng=27)
    assert [c.pre_weeks for c in table.cells] == [15, 10]
    assert [c.n_starts for c in table.cells] == [8, 1]
    assert any("10 pre weeks" in note for note in table.notes)
    with pytest.raises(ValueError, match="pre_weeks"):
        placebo_power(y, sizes=[4], weeks=[29], pre_weeks=15, rng=0)


def test_complete_draw_is_a_uniform_complete_randomization():
    draw = complete_draw(12)
    codes = draw(np.random.default_rng(28), 3, 20_000, 5)
    assert codes.dtype == np.int8
    assert ((codes == 1).sum(axis=1) == 3).all()
    assert ((codes == 0).sum(axis=1) == 3).all()
    assert ((codes == -1).sum(axis=1) == 6).all()
    # every store is treated with probability 3/12 and in the control arm with 3/12
    assert np.abs((codes == 1).mean(axis=0) - 0.25).max() < 0.015
    assert np.abs((codes == 0).mean(axis=0) - 0.25).max() < 0.015
    with pytest.raises(ValueError, match="per_arm"):
        draw(np.random.default_rng(0), 7, 1, 0)


def test_a_custom_draw_gets_the_start_and_is_checked():
    y = chain_like(n_units=30, n_periods=40, seed=29)
    seen = []
    inner = complete_draw(30)

    def draw(rng, per_arm, n_draws, start):
        seen.append(start)
        return inner(rng, per_arm, n_draws, start)

    placebo_power(y, sizes=[3], weeks=[5], pre_weeks=10, n_placebos=100, draw=draw, rng=0)
    assert seen == sorted(set(seen))
    assert min(seen) >= 10
    assert max(seen) <= 35

    def bad(rng, per_arm, n_draws, start):
        codes = inner(rng, per_arm, n_draws, start)
        codes[:, 0] = 1
        return codes

    with pytest.raises(ValueError, match="per_arm"):
        placebo_power(y, sizes=[3], weeks=[5], pre_weeks=10, n_placebos=50, draw=bad, rng=0)


def test_analytic_mde_formula():
    from scipy import stats

    assert analytic_mde(2.0, 10, 20) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 2.0 * math.sqrt(1 / 10 + 1 / 20)
    )
    assert analytic_mde(1.0, 8, 8, alpha=0.1, power=0.9, df=14) == pytest.approx(
        (stats.t.ppf(0.95, 14) + stats.t.ppf(0.9, 14)) * math.sqrt(2 / 8)
    )
    assert analytic_mde(0.0, 5, 5) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sizes": []}, "sizes"),
        ({"sizes": [1]}, "sizes"),
        ({"sizes": [31]}, "sizes"),
        ({"sizes": [4, 4]}, "sizes"),
        ({"sizes": [2.5]}, "sizes"),
        ({"weeks": [0]}, "weeks"),
        ({"pre_weeks": 0}, "pre_weeks"),
        ({"n_placebos": 0}, "n_placebos"),
        ({"alpha": 1.5}, "alpha"),
        ({"power": 0}, "power"),
        ({"estimator": "ols"}, "estimator"),
        ({"scale": "auto"}, "scale"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"rng": "seed"}, "rng"),
        ({"n_ri_draws": 0}, "n_ri_draws"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, name):
    y = chain_like(n_units=60, n_periods=40, seed=30)
    base = {"sizes": [4], "weeks": [8], "pre_weeks": 10, "n_placebos": 10, "rng": 0}
    with pytest.raises(ValueError, match=name):
        placebo_power(y, **{**base, **kwargs})


def test_bad_history_is_an_error():
    y = chain_like(n_units=20, n_periods=30, seed=31)
    kw = {"sizes": [4], "weeks": [5], "pre_weeks": 10, "n_placebos": 10}
    with pytest.raises(ValueError, match="positive"):
        placebo_power(np.where(np.arange(30) == 3, 0.0, y), **kw)
    placebo_power(np.where(np.arange(30) == 3, 0.0, y), scale="level", **kw)
    with pytest.raises(ValueError, match="finite"):
        placebo_power(np.where(np.arange(30) == 3, np.nan, y), **kw)
    with pytest.raises(ValueError, match="shape"):
        placebo_power(y[0], **kw)
    for bad in ({"sd": -1.0}, {"n_treated": 0}, {"alpha": 0}, {"df": 0}):
        args = {"sd": 1.0, "n_treated": 5, "n_control": 5, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            analytic_mde(args.pop("sd"), args.pop("n_treated"), args.pop("n_control"), **args)


def test_degenerate_placebos_do_not_reject():
    y = np.full((20, 30), 5.0)
    table = placebo_power(y, sizes=[4], weeks=[5], pre_weeks=10, n_placebos=50, rng=0)
    cell = table.cells[0]
    assert cell.n_degenerate == 50
    assert cell.false_positive_rate == 0.0
    assert math.isnan(cell.mde)
    assert table.to_dict()["cells"][0]["mde"] is None


# -- the total-sales ratio, every other unit as control, the kept fits ---------------------


def panel_of_any(sample, y: np.ndarray, j: int, effect: float = 0.0) -> PanelData:
    """Placebo ``j`` of ``sample`` on the level scale, arms of any size, rows shuffled."""
    s, pre, weeks, n1 = sample.starts[j], sample.pre_weeks, sample.weeks, sample.per_arm
    units = sample.units[j]
    window = y[units, s - pre : s + weeks].copy()
    treated = np.arange(len(units)) < n1
    post = np.arange(pre + weeks) >= pre
    window[np.ix_(treated, post)] *= 1.0 + effect
    order = np.random.default_rng(j).permutation(len(units))
    return PanelData(window[order], units[order], np.arange(pre + weeks), treated[order], post)


@pytest.mark.parametrize("controls", ["matched", "all"])
@pytest.mark.parametrize("adjust", ["none", "regression"])
def test_ratio_matches_ratio_did_on_every_placebo(controls, adjust):
    from loyalty_pilot.experiments.ratio import ratio_did

    y = chain_like(n_units=30, seed=22)
    sample = placebo_sample(y, per_arm=4, weeks=8, pre_weeks=30, n_placebos=6, rng=23,
                            estimator="ratio", controls=controls, adjust=adjust)  # fmt: skip
    assert sample.scale == "ratio"
    assert sample.units.shape == (6, 8 if controls == "matched" else 30)
    for j in range(6):
        result = ratio_did(panel_of_any(sample, y, j), adjust=adjust)
        assert result.status == "ok"
        assert close(sample.estimate[j], result.extras["log_estimate"])
        assert close(sample.se[j], result.extras["se"])
        assert close(sample.df[j], result.extras["df"])
        assert close(sample.p_value[j], result.p_value)
        # an effect multiplies the treated test sales: log1p(effect) on the estimate exactly
        moved = ratio_did(panel_of_any(sample, y, j, effect=0.07), adjust=adjust)
        assert close(sample.estimate[j] + math.log1p(0.07), moved.extras["log_estimate"])
        assert close(sample.se[j], moved.extras["se"])


@pytest.mark.parametrize("estimator", ["did", "ancova"])
@pytest.mark.parametrize("scale", ["log", "level"])
def test_did_and_ancova_with_every_other_unit_as_control(estimator, scale):
    y = chain_like(n_units=25, seed=24)
    sample = placebo_sample(y, per_arm=3, weeks=6, pre_weeks=20, n_placebos=4, rng=25,
                            estimator=estimator, scale=scale, controls="all")  # fmt: skip
    fn = did if estimator == "did" else ancova
    for j in range(4):
        panel = panel_of_any(sample, y, j)
        if scale == "log":
            panel = PanelData(np.log(panel.y), panel.units, panel.periods, panel.treated,
                              panel.post)  # fmt: skip
        result = fn(panel)
        assert (result.extras["n_treated"], result.extras["n_control"]) == (3, 22)
        assert close(sample.estimate[j], result.estimate)
        assert close(sample.se[j], result.extras["se"])
        assert close(sample.df[j], result.extras["df"])


def test_all_controls_turns_every_unit_outside_the_pilot_into_a_control():
    from loyalty_pilot.experiments.power import all_controls

    base = complete_draw(12)
    codes = all_controls(base)(np.random.default_rng(1), 3, 50, 0)
    again = base(np.random.default_rng(1), 3, 50, 0)
    assert codes.dtype == np.int8
    assert ((codes == 1) == (again == 1)).all()  # the same treated units
    assert ((codes == 0) == (again != 1)).all()  # every other unit a control
    with pytest.raises(ValueError, match="controls == 'all' cannot be used with estimator 'ri'"):
        placebo_power(chain_like(), sizes=[4], weeks=[8], pre_weeks=20, estimator="ri",
                      controls="all")  # fmt: skip
    with pytest.raises(ValueError, match="adjust == 'regression' is for estimator 'ratio'"):
        placebo_power(chain_like(), sizes=[4], weeks=[8], pre_weeks=20, adjust="regression")
    with pytest.raises(ValueError, match="controls == 'some'"):
        placebo_power(chain_like(), sizes=[4], weeks=[8], pre_weeks=20, controls="some")
    # with every other unit as control, up to units - 2 can be treated
    table = placebo_power(chain_like(n_units=10), sizes=[8], weeks=[8], pre_weeks=20,
                          n_placebos=50, estimator="ratio", controls="all", rng=2)  # fmt: skip
    assert table.controls == "all"
    assert table.to_dict()["controls"] == "all"


@pytest.mark.parametrize("estimator", ["ratio", "did", "ri"])
def test_kept_fits_give_the_cells_figures_and_the_treated_share(estimator):
    y = chain_like(n_units=40, seed=26)
    kw = {"sizes": [4, 6], "weeks": [6, 10], "pre_weeks": 24, "n_placebos": 400, "rng": 27,
          "estimator": estimator, "threshold": 0.05}  # fmt: skip
    table = placebo_power(y, keep_fits=True, **kw)
    plain = placebo_power(y, **kw)
    assert table.cells == plain.cells  # keeping the fits changes nothing else
    assert plain.fits == ()
    assert "fits" not in table.to_dict()
    json.dumps(table.to_dict(), allow_nan=False)
    assert len(table.fits) == len(table.cells)
    for cell, fits in zip(table.cells, table.fits, strict=True):
        assert (fits.per_arm, fits.weeks, fits.estimator) == (cell.per_arm, cell.weeks, estimator)
        assert fits.scale == ("ratio" if estimator == "ratio" else "log")
        assert fits.estimate.shape == fits.se.shape == fits.df.shape == (400,)
        assert 0 < fits.treated_share < 1
        if estimator == "ri":
            assert np.isnan(fits.se).all()
            continue
        p = kernels.t_p_value(fits.estimate, fits.se, fits.df)
        assert np.mean(p <= 0.05) == pytest.approx(cell.false_positive_rate)
        # the contract: at a true uplift u the estimate is estimate + log1p(u), same se, df
        # (the MDE is where the 80th percentile placebo reaches p = alpha: just above it)
        u = cell.mde
        shifted = kernels.t_p_value(fits.estimate + math.log1p(u * 1.001), fits.se, fits.df)
        assert np.mean(shifted <= 0.05) >= 0.8
        below = kernels.t_p_value(fits.estimate + math.log1p(u * 0.999), fits.se, fits.df)
        assert np.mean(below <= 0.05) < 0.8


def test_treated_share_is_the_treated_units_share_of_the_chains_test_sales():
    y = chain_like(n_units=20, seed=28)
    table = placebo_power(y, sizes=[3], weeks=[5], pre_weeks=20, n_placebos=30, rng=29,
                          estimator="ratio", keep_fits=True)  # fmt: skip
    # the same stream as the table's only cell: the placebos drawn again by hand
    stream = np.random.default_rng(29).spawn(1)[0]
    history = kernels.History(y)
    placebos = kernels.Placebos.draw(history, 3, 5, 20, 30, complete_draw(20), stream)
    shares = [y[p[:3], s : s + 5].sum() / y[:, s : s + 5].sum()
              for p, s in zip(placebos.units, placebos.starts, strict=True)]  # fmt: skip
    assert table.fits[0].treated_share == pytest.approx(np.mean(shares), rel=1e-9)


def test_ratio_false_positive_rate_on_a_synthetic_chain(chain_sales):
    table = placebo_power(chain_sales, sizes=[8, 12], weeks=[12], pre_weeks=40,
                          n_placebos=4000, rng=7, estimator="ratio")  # fmt: skip
    for cell in table.cells:
        assert 0.035 <= cell.false_positive_rate <= 0.065, cell
        assert cell.n_degenerate == 0
        assert cell.analytic_mde is None
