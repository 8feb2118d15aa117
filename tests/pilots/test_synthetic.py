"""Tests of the synthetic chain generator: schema, invariants, realism and injected effects."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.pilots.synthetic import Effect, generate

START = datetime.date(2024, 1, 1)
MID = datetime.date(2024, 7, 1)  # a Monday, start of week 26
WEEKS = 52


@pytest.fixture(scope="module")
def small():
    return generate(stores=12, regions=4, customers=6000, weeks=WEEKS, seed=3)


def _week(dates: pd.Series) -> pd.Series:
    return (dates - pd.Timestamp(START)).dt.days // 7


# --- determinism, schema, invariants -------------------------------------------------


def test_same_seed_same_frames_and_different_seed_differs():
    effect = Effect(start=MID, stores=("S002",), visit_uplift=0.1, churn_reduction=0.3)
    kwargs = {"stores": 8, "regions": 3, "customers": 1500, "weeks": 30, "effects": [effect]}
    a, b = generate(seed=11, **kwargs), generate(seed=11, **kwargs)
    pd.testing.assert_frame_equal(a.baskets, b.baskets)
    pd.testing.assert_frame_equal(a.stores, b.stores)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    assert a.effects == (effect,)
    c = generate(seed=12, **kwargs)
    assert len(c.baskets) != len(a.baskets) or not c.baskets.equals(a.baskets)
    assert not c.customers["purchase_rate"].equals(a.customers["purchase_rate"])


def test_schema_and_dtypes(small):
    b, s, c = small.baskets, small.stores, small.customers
    assert list(b.columns) == [
        "basket_id",
        "customer_id",
        "store_id",
        "date",
        "amount",
        "margin",
        "items",
    ]
    for col in ("basket_id", "customer_id", "store_id"):
        assert pd.api.types.is_string_dtype(b[col]), col
    assert b["date"].dtype == "datetime64[ns]"
    assert b["date"].dt.hour.nunique() > 8  # a time of day, not just dates
    assert b["date"].is_monotonic_increasing
    assert b["amount"].dtype == np.float64
    assert b["margin"].dtype == np.float64
    assert b["items"].dtype == np.int64
    assert (b["items"] >= 1).all()
    assert np.allclose(b["amount"] * 100, np.round(b["amount"] * 100))
    assert b["basket_id"].is_unique
    assert b["basket_id"].str.fullmatch(r"B\d{8}").all()
    assert (b["basket_id"].to_numpy() == np.sort(b["basket_id"].to_numpy())).all()
    ident = b["customer_id"].dropna()
    assert ident.str.fullmatch(r"C\d{6}").all()
    assert set(ident) <= set(c["customer_id"])
    assert set(b["store_id"]) <= set(s["store_id"])
    assert b["date"].min() >= pd.Timestamp(START)
    assert b["date"].max() < pd.Timestamp(START) + pd.Timedelta(days=7 * WEEKS)

    assert list(s.columns[:5]) == ["store_id", "region", "format", "size_m2", "opened"]
    assert list(s["store_id"]) == [f"S{k:03d}" for k in range(1, 13)]
    assert s["region"].nunique() == 4  # every region has at least one store
    assert set(s["format"]) <= {"hyper", "super", "proxi"}
    assert (s["opened"] < pd.Timestamp(START)).all()
    assert list(c.columns) == [
        "customer_id",
        "home_store",
        "birth",
        "purchase_rate",
        "dropout_hazard",
        "mean_spend",
        "dropout_date",
    ]
    assert c["dropout_date"].dtype == "datetime64[ns]"
    assert c["dropout_date"].isna().any()
    assert c["dropout_date"].notna().any()


def test_every_region_has_a_store_even_when_tight():
    chain = generate(stores=6, regions=6, customers=200, weeks=4, seed=5)
    assert sorted(chain.stores["region"]) == sorted(
        ["north", "south", "east", "west", "centre", "ouest"]
    )
    many = generate(stores=20, regions=14, customers=200, weeks=2, seed=1)
    assert many.stores["region"].nunique() == 14


def test_formats_are_sized_hyper_super_proxi():
    stores = generate(stores=60, regions=5, customers=500, weeks=2, seed=2).stores
    median = stores.groupby("format")["size_m2"].median()
    assert median["hyper"] > 2 * median["super"] > 4 * median["proxi"]


def test_no_basket_before_birth_or_after_dropout(small):
    b = small.baskets.dropna(subset=["customer_id"])
    m = b.merge(small.customers, on="customer_id", validate="many_to_one")
    assert (m["date"] >= m["birth"]).all()
    dropped = m["dropout_date"].notna()
    assert (m.loc[dropped, "date"] < m.loc[dropped, "dropout_date"]).all()
    # and the births really are spread: some customers start late
    assert (small.customers["birth"] > pd.Timestamp(START)).mean() == pytest.approx(0.3, abs=0.03)


def test_shares_anonymous_returns_home_store_weekday(small):
    b = small.baskets
    assert b["customer_id"].isna().mean() == pytest.approx(0.2, abs=0.02)
    assert (b["amount"] < 0).mean() == pytest.approx(0.01, abs=0.004)
    ident = b.dropna(subset=["customer_id"]).merge(small.customers, on="customer_id")
    # home 0.85, + 0.10 when the home store is alone in its region, + 0.05 x attractiveness
    st = small.stores.set_index("store_id")
    alone = st["region"].map(st["region"].value_counts()) == 1
    expected = 0.85 + 0.10 * alone.astype(float) + 0.05 * st["attractiveness"]
    home_share = (ident["store_id"] == ident["home_store"]).mean()
    assert home_share == pytest.approx(expected[ident["home_store"]].mean(), abs=0.01)
    dow = b["date"].dt.day_of_week.value_counts(normalize=True)
    assert dow.idxmax() == 5  # Saturday busiest
    assert dow.idxmin() == 6  # Sunday lowest
    assert 30 < b["amount"].mean() < 60
    none = generate(stores=4, regions=2, customers=500, weeks=4, seed=1, anonymous_share=0.0)
    assert none.baskets["customer_id"].notna().all()


def test_store_weekly_sales_cv_is_realistic_and_christmas_peaks(small):
    b = small.baskets
    weekly = b.groupby([b["store_id"], _week(b["date"])])["amount"].sum().unstack()
    assert weekly.notna().all().all()
    cv = weekly.std(axis=1) / weekly.mean(axis=1)
    assert 0.05 <= cv.median() <= 0.30
    chain_weekly = weekly.sum()
    christmas = chain_weekly.loc[50]  # week of 2024-12-16
    assert christmas > 1.15 * chain_weekly.median()
    # the ground-truth store-week factor (seasonality x trend x noise) drives the sales
    factor = pd.DataFrame(small.store_week_factor, index=small.stores["store_id"])
    assert np.corrcoef(chain_weekly, factor.mean())[0, 1] > 0.8


def test_default_size_is_about_a_million_baskets_shape_only():
    # the default arguments, scaled down in customers and weeks (see the benchmark for size)
    chain = generate(customers=3000, weeks=10)
    assert len(chain.stores) == 48
    assert chain.stores["region"].nunique() == 5
    # ~0.4 visits/week x ~0.8 alive x 1.25 (anonymous) per customer-week
    assert 0.25 < len(chain.baskets) / (3000 * 10) < 0.55


# --- injected effects ----------------------------------------------------------------


def _diff_in_means(values: pd.Series, treated: pd.Series) -> tuple[float, float]:
    """Treated minus control mean of a per-unit value, with its standard error."""
    t, c = values[treated], values[~treated]
    se = np.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    return float(t.mean() - c.mean()), float(se)


@pytest.fixture(scope="module")
def store_effect_panel():
    """Per store (4 chains of 40 stores): log post/pre of basket counts and mean amounts."""
    rows = []
    for seed in (21, 22, 23, 24):
        treated = tuple(f"S{k:03d}" for k in range(1, 41, 2))
        effect = Effect(start=MID, stores=treated, visit_uplift=0.10, basket_uplift=0.05)
        chain = generate(stores=40, regions=4, customers=24_000, weeks=WEEKS, seed=seed,
                         effects=[effect])  # fmt: skip
        b = chain.baskets
        post = b["date"] >= pd.Timestamp(MID)
        g = b.groupby([b["store_id"], post])["amount"].agg(["size", "mean"]).unstack()
        frame = pd.DataFrame(
            {
                "log_visits": np.log(g[("size", True)] / g[("size", False)]),
                "log_amount": np.log(g[("mean", True)] / g[("mean", False)]),
                "treated": g.index.isin(treated),
            }
        )
        rows.append(frame.reset_index(drop=True))
    return pd.concat(rows, ignore_index=True)


def test_store_visit_uplift_is_recovered(store_effect_panel):
    p = store_effect_panel
    est, se = _diff_in_means(p["log_visits"], p["treated"])
    assert se < 0.0075  # 160 stores: a tolerance of 3.5 se, about 2.5 points
    assert abs(est - np.log(1.10)) < 3.5 * se


def test_store_basket_uplift_is_recovered(store_effect_panel):
    p = store_effect_panel
    est, se = _diff_in_means(p["log_amount"], p["treated"])
    assert se < 0.0075
    assert abs(est - np.log(1.05)) < 3.5 * se


def test_customer_visit_and_basket_uplift_is_recovered():
    n = 60_000
    treated_ids = tuple(f"C{k:06d}" for k in range(1, n + 1, 2))
    effect = Effect(start=MID, customers=treated_ids, visit_uplift=0.10, basket_uplift=0.05)
    chain = generate(stores=12, regions=3, customers=n, weeks=WEEKS, seed=8, effects=[effect])
    b = chain.baskets.dropna(subset=["customer_id"])
    post = b["date"] >= pd.Timestamp(MID)
    per = b.groupby([b["customer_id"], post])["amount"].agg(["size", "sum"]).unstack(fill_value=0)
    per = per.reindex(chain.customers["customer_id"], fill_value=0)
    treated = per.index.isin(treated_ids)

    def did(terms: list[tuple[int, pd.Series]]) -> tuple[float, float]:
        """Treated minus control of sum(sign * log(sum over the arm's customers of z)),
        with its delta-method standard error (customers independent)."""
        est, var = 0.0, 0.0
        for arm, sign in ((treated, 1), (~treated, -1)):
            influence = np.zeros(arm.sum())
            for k, z in terms:
                total = z[arm].sum()
                est += sign * k * np.log(total)
                influence += k * z[arm].to_numpy() / total
            var += len(influence) * influence.var()
        return float(est), float(np.sqrt(var))

    size_post, size_pre = per[("size", True)], per[("size", False)]
    visits, se_v = did([(1, size_post), (-1, size_pre)])
    assert se_v < 0.0075  # 60 000 customers: a tolerance of 3.5 se, about 2.5 points
    assert abs(visits - np.log(1.10)) < 3.5 * se_v
    # mean basket: log(sum of amounts / number of baskets), post minus pre
    spend, se_s = did(
        [(1, per[("sum", True)]), (-1, size_post), (-1, per[("sum", False)]), (1, size_pre)]
    )
    assert se_s < 0.006
    assert abs(spend - np.log(1.05)) < 3.5 * se_s
    # the effect is customer-level: anonymous baskets keep their mean amount
    anon = chain.baskets[chain.baskets["customer_id"].isna()]
    anon_post = anon["date"] >= pd.Timestamp(MID)
    ratio = anon.loc[anon_post, "amount"].mean() / anon.loc[~anon_post, "amount"].mean()
    assert abs(np.log(ratio)) < 0.02


def test_churn_reduction_lowers_dropout_exactly_as_injected():
    n_weeks, e_week, c = WEEKS, 13, 0.5
    e_start = START + datetime.timedelta(weeks=e_week)
    treated = tuple(f"S{k:03d}" for k in range(1, 13, 2))
    effect = Effect(start=e_start, stores=treated, churn_reduction=c)
    chain = generate(stores=12, regions=3, customers=30_000, weeks=n_weeks, seed=4,
                     effects=[effect])  # fmt: skip
    cu = chain.customers
    e_ts = pd.Timestamp(e_start)
    window_start = cu["birth"].where(cu["birth"] > e_ts, e_ts)
    alive = cu["dropout_date"].isna() | (cu["dropout_date"] >= window_start)
    cu, window_start = cu[alive], window_start[alive]
    hit = cu["home_store"].isin(treated).to_numpy()
    dropped = cu["dropout_date"].notna().to_numpy()
    # naive comparison: affected customers drop out much less often than the others
    assert dropped[hit].mean() < 0.65 * dropped[~hit].mean()
    # exact: given alive at the window start, P(dropout before the end) = 1 - exp(-hazard t)
    weeks_left = ((pd.Timestamp(START) + pd.Timedelta(weeks=n_weeks)) - window_start).dt.days / 7
    hazard = cu["dropout_hazard"].to_numpy() * np.where(hit, 1 - c, 1.0)
    p = 1 - np.exp(-hazard * weeks_left.to_numpy())
    for group in (hit, ~hit):
        expected, sd = p[group].sum(), np.sqrt((p[group] * (1 - p[group])).sum())
        assert abs(dropped[group].sum() - expected) < 4 * sd
    p_without = 1 - np.exp(-cu["dropout_hazard"].to_numpy()[hit] * weeks_left.to_numpy()[hit])
    assert dropped[hit].sum() < p_without.sum() - 10 * np.sqrt((p_without * (1 - p_without)).sum())


def test_effect_is_visible_from_its_start_week_on():
    effect = Effect(start=MID, stores=("S001", "S002"), visit_uplift=0.5, basket_uplift=0.5)
    chain = generate(stores=4, regions=1, customers=3000, weeks=WEEKS, seed=9, effects=[effect])
    b = chain.baskets
    b = b[b["store_id"].isin(["S001", "S002"])]
    weekly = b.groupby(_week(b["date"]))["amount"].agg(["size", "mean"])
    pre, post = weekly.loc[20:25], weekly.loc[26:31]
    # +50 % visits and +50 % amount: unmistakable from the first week on, not before
    assert post["size"].mean() > 1.3 * pre["size"].mean()
    assert post["mean"].mean() > 1.3 * pre["mean"].mean()


# --- invalid arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stores": 0}, "stores"),
        ({"regions": 0}, "regions"),
        ({"stores": 3, "regions": 4}, "regions"),
        ({"customers": 0}, "customers"),
        ({"weeks": 0}, "weeks"),
        ({"weeks": 2.5}, "weeks"),
        ({"seed": -1}, "seed"),
        ({"start": datetime.date(2024, 1, 2)}, "start"),
        ({"anonymous_share": 1.0}, "anonymous_share"),
        ({"anonymous_share": -0.1}, "anonymous_share"),
        ({"effects": [Effect(start=MID, stores=("S999",))]}, "effects"),
        ({"effects": [Effect(start=MID, customers=("C999999",))]}, "effects"),
        ({"effects": ["not an effect"]}, "effects"),
    ],
)
def test_generate_rejects_invalid_arguments(kwargs, field):
    args = {"stores": 4, "regions": 2, "customers": 100, "weeks": 4} | kwargs
    with pytest.raises(ValueError, match=rf"^{field}"):
        generate(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stores": ("S001",), "visit_uplift": -1.5}, "visit_uplift == -1.5, must be > -1."),
        ({"stores": ("S001",), "basket_uplift": -1.0}, "basket_uplift == -1.0, must be > -1."),
        ({"stores": ("S001",), "churn_reduction": 1.2}, "churn_reduction == 1.2"),
        ({"stores": ("S001",), "churn_reduction": -0.1}, "churn_reduction == -0.1"),
        ({"stores": ("S001",), "customers": ("C000001",)}, "exactly one of stores / customers"),
        ({}, "exactly one of stores / customers"),
        ({"stores": "S001"}, "stores == 'S001'"),
    ],
)
def test_effect_rejects_invalid_fields(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        Effect(start=MID, **kwargs)


def test_effect_accepts_lists_as_tuples():
    effect = Effect(start=MID, stores=["S001", "S002"], visit_uplift=0.1)
    assert effect.stores == ("S001", "S002")
