"""A synthetic retail chain with known ground truth.

`generate` draws a chain of stores, a customer base and two years (by default) of
baskets, optionally with programme effects (`Effect`) injected from a date on. The
effects are the ground truth that the pilot estimators are tested against, so they are
applied *exactly in expectation*, not approximately. Pure numpy + pandas, no I/O, fully
vectorised (loops only over effects and over the digits of ids); the default chain
(48 stores, 30 000 customers, 104 weeks, about 1.1 M baskets) takes a couple of seconds.

The model
---------
Time is in days from ``start`` (a Monday); week ``w`` covers days ``7w .. 7w + 6``.

Stores
    Each region gets at least one store, the others are spread uniformly. Format
    ``hyper`` / ``super`` / ``proxi`` with probabilities 0.2 / 0.45 / 0.35 and a
    log-normal surface around 9 000 / 2 200 / 450 m2. Attractiveness is
    ``size_m2 ** 0.7`` (bigger stores draw more customers, less than in proportion).
    Each store has an annual growth rate ``g_s ~ N(0, 0.04)`` (trend
    ``exp(g_s * w / 52)``) and i.i.d. store-week noise ``exp(0.06 z - 0.06**2 / 2)``
    (log-normal, mean 1).

Seasonality (by ISO week of the week's Thursday; the same for every store)
    A mild annual sinusoid (amplitude 3 %, high in early summer), Christmas weeks
    50 / 51 / 52 (+15 / +30 / +20 %), a quiet week 1 (-6 %), an Easter bump in weeks
    13-15 (+6 %), summer weeks 28-33 (+4 %) and back to school weeks 35-36 (+5 %).

Customers (a Pareto/NBD-like process, with time-based dropout)
    Weekly purchase rate ``lambda_i ~ Gamma(1.5, mean 0.4)``; dropout hazard per week
    ``mu_i ~ Gamma(3, scale 0.0025)`` (mean 0.0075, about 70 % one-year retention, mean
    lifetime about four years); birth (first possible purchase) at ``start`` for 70 % of
    customers, uniform over the period for the rest; dropout at birth + an exponential
    lifetime of rate ``mu_i`` (continuous time; the customer buys nothing on or after
    ``dropout_date``). Home store drawn proportional to attractiveness. Mean spend
    ``m_i = base(format of home store) * Gamma(4, mean 1)`` with base 60 / 42 / 26 EUR
    for hyper / super / proxi.

Visits (identified baskets)
    The number of visits of customer ``i`` in week ``w`` is Poisson with mean
    ``lambda_i * season_w * exposure_iw``, where the exposure is the share of the week's
    day-of-week weight (Mon-Sun 0.13, 0.13, 0.14, 0.14, 0.18, 0.22, 0.06) during which
    the customer is alive (partial first and last weeks). A visit goes to the home store
    with probability 0.85, to another store of the home region with 0.10 (proportional
    to attractiveness; the home store if it is alone in its region) and to any store
    with 0.05 (proportional to attractiveness). The store's trend, store-week noise and
    any effect multiply the rate of visits *to that store*; this is done exactly by
    thinning: visits are drawn with the rate times an upper bound of those multipliers,
    then each visit is kept with probability (its multiplier) / (the bound). The day
    is drawn from the day-of-week weights restricted to the alive days, the time of day
    from hourly weights (8:00-21:00, Sunday 8:00-13:00).

Anonymous baskets
    Per store x week, Poisson with mean ``a/(1-a)`` times the store's expected
    identified visits (over the period, spread by seasonality) times the same trend,
    noise and store effects (``a = anonymous_share``); each anonymous basket gets the
    spend of a fresh customer of that store's format.

Amounts
    Gamma-Gamma-like: a basket's amount is ``Gamma(2.5, mean m_i * base(visited format)
    / base(home format))`` (at least 0.50 EUR) times the basket uplift of the effects
    that apply to it; 1 % of baskets are returns (amount ``-0.3`` times that). Margin is
    the amount times a format margin rate (22 / 25 / 29 %) plus ``N(0, 0.04)``;
    items is ``1 + Poisson(|amount| / 3.2 - 1)``.

Effects (applied to baskets dated on or after ``Effect.start``)
    ``visit_uplift`` multiplies the visit rate of the baskets it applies to (made in the
    effect's stores, or made by the effect's customers in any store, anonymous baskets
    included for a store effect), ``basket_uplift`` their amounts (and margins).
    ``churn_reduction`` multiplies the dropout hazard by ``1 - c`` from ``start`` on,
    for the listed customers or those whose home store is one of the effect's stores:
    the remaining lifetime of those still alive at ``start`` is redrawn with the new
    hazard (exact by memorylessness); those born later draw their lifetime with it.
    Several effects combine multiplicatively.

Determinism: one ``np.random.default_rng(seed)`` and a fixed order of draws, so the same
arguments give identical frames.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Chain", "Effect", "generate"]

REGION_NAMES = (
    "north",
    "south",
    "east",
    "west",
    "centre",
    "ouest",
    "nord-est",
    "sud-ouest",
    "alpes",
    "bretagne",
    "normandie",
    "provence",
)
FORMATS = ("hyper", "super", "proxi")
FORMAT_PROB = np.array([0.20, 0.45, 0.35])
FORMAT_SIZE_M2 = np.array([9000.0, 2200.0, 450.0])  # median surface
FORMAT_SPEND = np.array([60.0, 42.0, 26.0])  # mean basket of an average customer, EUR
FORMAT_MARGIN = np.array([0.22, 0.25, 0.29])  # gross margin rate

ATTRACTIVENESS_EXPONENT = 0.7
STORE_GROWTH_SD = 0.04  # annual growth rate, N(0, sd)
STORE_WEEK_NOISE_SD = 0.06  # log-normal store-week noise
PURCHASE_RATE_SHAPE, PURCHASE_RATE_MEAN = 1.5, 0.4  # per week
HAZARD_SHAPE, HAZARD_SCALE = 3.0, 0.0025  # per week
ACTIVE_AT_START = 0.70
SPEND_SHAPE = 4.0  # customer mean spend heterogeneity, Gamma(shape, mean 1)
BASKET_SHAPE = 2.5  # basket amount around the customer mean, Gamma(shape)
MIN_AMOUNT = 0.50
RETURN_SHARE, RETURN_FRACTION = 0.01, 0.3
ITEM_PRICE = 3.2
MARGIN_SD = 0.04
P_HOME, P_REGION = 0.85, 0.10  # the rest (0.05) goes to any store

# Monday .. Sunday share of a week's visits.
DOW_WEIGHTS = np.array([0.13, 0.13, 0.14, 0.14, 0.18, 0.22, 0.06])
# Visits per opening hour, 8:00 .. 20:00 (Monday to Saturday) and 8:00 .. 12:00 (Sunday).
HOUR_WEIGHTS = np.array([3, 6, 9, 11, 11, 8, 6, 7, 9, 11, 10, 6, 3], dtype=float)
SUNDAY_HOUR_WEIGHTS = np.array([3, 6, 8, 8, 4], dtype=float)
OPENING_HOUR = 8


@dataclass(frozen=True)
class Effect:
    """A programme effect injected from `start` (inclusive) on.

    Exactly one of `stores` (a store-level effect: applies to baskets made in these
    stores, identified or anonymous) and `customers` (a customer-level effect: applies to
    these customers' baskets in every store) is non-empty. Uplifts are relative:
    ``visit_uplift=0.05`` is +5 % visits, ``basket_uplift`` multiplies basket amounts by
    ``1 + b``, ``churn_reduction=0.2`` multiplies the dropout hazard by 0.8 (for the
    listed customers, or for customers whose home store is one of `stores`).
    """

    start: datetime.date
    stores: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    visit_uplift: float = 0.0
    basket_uplift: float = 0.0
    churn_reduction: float = 0.0

    def __post_init__(self) -> None:
        start = self.start
        if isinstance(start, pd.Timestamp | datetime.datetime):
            start = start.date()
            object.__setattr__(self, "start", start)
        if not isinstance(start, datetime.date):
            raise ValueError(f"start == {self.start!r}, must be a date.")
        for name in ("stores", "customers"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} == {value!r}, must be a sequence of ids, not a string.")
            value = tuple(value)
            if not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} == {value!r}, must contain strings.")
            object.__setattr__(self, name, value)
        if bool(self.stores) == bool(self.customers):
            raise ValueError(
                f"stores has {len(self.stores)} and customers {len(self.customers)} ids, "
                "exactly one of stores / customers must be non-empty."
            )
        for name in ("visit_uplift", "basket_uplift"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value > -1):
                raise ValueError(f"{name} == {value!r}, must be > -1.")
        c = self.churn_reduction
        if not (_is_real(c) and 0 <= c <= 1):
            raise ValueError(f"churn_reduction == {c!r}, must be in [0, 1].")


@dataclass(frozen=True, eq=False)
class Chain:
    """A generated chain: stores, baskets, ground truth per customer, and the arguments.

    ``stores``: store_id (str, 'S001', ...), region (str), format ('hyper' | 'super' |
    'proxi'), size_m2 (float), opened (datetime64, midnight, before `start`), and the
    ground truth attractiveness (float, sums to 1) and growth (annual trend rate).

    ``baskets`` (sorted by date, then basket_id): basket_id (str 'B00000001', ...,
    unique, in date order), customer_id (str 'C000001', ...; missing for anonymous
    baskets: pandas' ``str`` dtype stores it as NaN, ``isna()`` is True), store_id
    (str), date (datetime64 timestamp with a time of day), amount
    (float, 2 decimals; about 1 % negative returns), margin (float, 2 decimals), items
    (int64, >= 1).

    ``customers`` (ground truth): customer_id, home_store (store_id), birth (datetime64,
    day of the first possible purchase), purchase_rate (visits per week, before
    seasonality, trend and effects), dropout_hazard (per week, before effects),
    mean_spend (EUR, mean basket at a store of the home store's format), dropout_date
    (datetime64, NaT if alive at the end; no basket on or after it).

    ``store_week_factor`` (ground truth, not compared): seasonality x trend x store-week
    noise, an array of shape (stores, weeks) in the order of ``stores``.
    """

    stores: pd.DataFrame
    baskets: pd.DataFrame
    customers: pd.DataFrame
    effects: tuple[Effect, ...]
    start: datetime.date
    weeks: int
    seed: int
    store_week_factor: np.ndarray | None = field(repr=False, default=None)
    """Ground truth: seasonality x trend x noise, shape (stores, weeks)."""


def generate(
    stores: int = 48,
    regions: int = 5,
    customers: int = 30_000,
    weeks: int = 104,
    seed: int = 0,
    start: datetime.date = datetime.date(2024, 1, 1),
    effects: Sequence[Effect] = (),
    anonymous_share: float = 0.2,
) -> Chain:
    """Generate a synthetic retail chain with known ground truth (see the module docstring).

    `start` must be a Monday; `effects` are applied exactly in expectation to baskets on
    or after their start. Raises ValueError naming the argument for invalid input.

    >>> chain = generate(stores=6, regions=2, customers=300, weeks=8, seed=1)
    >>> sorted(chain.stores.region.unique())
    ['north', 'south']
    >>> bool(chain.baskets.basket_id.is_unique)
    True
    """
    _check_int("stores", stores, 1)
    _check_int("regions", regions, 1)
    if regions > stores:
        raise ValueError(f"regions == {regions}, must be <= stores ({stores}).")
    _check_int("customers", customers, 1)
    _check_int("weeks", weeks, 1)
    _check_int("seed", seed, 0)
    if isinstance(start, pd.Timestamp | datetime.datetime):
        start = start.date()
    if not isinstance(start, datetime.date):
        raise ValueError(f"start == {start!r}, must be a date.")
    if start.weekday() != 0:
        raise ValueError(f"start == {start.isoformat()} ({start:%A}), must be a Monday.")
    if not (_is_real(anonymous_share) and 0 <= anonymous_share < 1):
        raise ValueError(f"anonymous_share == {anonymous_share!r}, must be in [0, 1).")
    if isinstance(effects, Effect):
        effects = (effects,)
    effects = tuple(effects)
    for k, e in enumerate(effects):
        if not isinstance(e, Effect):
            raise ValueError(f"effects[{k}] == {e!r}, must be an Effect.")

    rng = np.random.default_rng(seed)
    n_s, n_c, n_w = int(stores), int(customers), int(weeks)
    n_days = 7 * n_w
    start64 = np.datetime64(start, "D")
    store_ids = _ids("S", np.arange(1, n_s + 1), 3)
    customer_ids = _ids("C", np.arange(1, n_c + 1), 6)

    # --- stores -------------------------------------------------------------------
    region_names = np.array(
        [REGION_NAMES[r] if r < len(REGION_NAMES) else f"region{r + 1:02d}" for r in range(regions)]
    )
    region = np.concatenate([np.arange(regions), rng.integers(0, regions, n_s - regions)])
    region = rng.permutation(region)
    fmt = rng.choice(3, size=n_s, p=FORMAT_PROB)
    size_m2 = np.round(FORMAT_SIZE_M2[fmt] * np.exp(rng.normal(0.0, 0.25, n_s)), -1)
    opened = start64 - rng.integers(180, 40 * 365, n_s).astype("timedelta64[D]")
    attract = size_m2**ATTRACTIVENESS_EXPONENT
    attract = attract / attract.sum()
    growth = rng.normal(0.0, STORE_GROWTH_SD, n_s)
    noise = np.exp(rng.normal(0.0, STORE_WEEK_NOISE_SD, (n_s, n_w)) - STORE_WEEK_NOISE_SD**2 / 2)
    season = _seasonality(start64, n_w)
    store_factor = np.exp(growth[:, None] * np.arange(n_w)[None, :] / 52.0) * noise  # (S, W)
    factor_max = store_factor.max(axis=0)  # (W,) thinning bound for the store factor

    # --- effects: ids -> indices, start day -------------------------------------
    store_index, customer_index = pd.Index(store_ids), pd.Index(customer_ids)
    eff = []
    for k, e in enumerate(effects):
        name, ids, index, size = (
            ("stores", e.stores, store_index, n_s)
            if e.stores
            else ("customers", e.customers, customer_index, n_c)
        )
        pos = index.get_indexer(list(ids))
        if (pos < 0).any():
            bad = ids[int(np.flatnonzero(pos < 0)[0])]
            raise ValueError(f"effects[{k}].{name}: unknown id {bad!r}.")
        mask = np.zeros(size, dtype=bool)
        mask[pos] = True
        eff.append((e, (e.start - start).days, bool(e.stores), mask))

    # --- customers ------------------------------------------------------------------
    lam = rng.gamma(PURCHASE_RATE_SHAPE, PURCHASE_RATE_MEAN / PURCHASE_RATE_SHAPE, n_c)
    mu = rng.gamma(HAZARD_SHAPE, HAZARD_SCALE, n_c)
    late = rng.random(n_c) >= ACTIVE_AT_START
    birth = np.where(late, rng.integers(0, n_days, n_c), 0)
    home = rng.choice(n_s, size=n_c, p=attract)
    spend = FORMAT_SPEND[fmt[home]] * rng.gamma(SPEND_SHAPE, 1.0 / SPEND_SHAPE, n_c)
    death = birth + rng.exponential(1.0, n_c) / mu * 7.0  # continuous, in days
    hazard_mult = np.ones(n_c)
    for e, e_day, is_store, mask in sorted(eff, key=lambda t: t[1]):
        if e.churn_reduction == 0:
            continue
        hit = mask[home] if is_store else mask
        fresh = rng.exponential(1.0, n_c)
        hazard_mult = np.where(hit, hazard_mult * (1.0 - e.churn_reduction), hazard_mult)
        with np.errstate(divide="ignore"):
            remaining = fresh / (mu * hazard_mult) * 7.0  # inf when the hazard is 0
        alive = hit & (birth <= e_day) & (death > e_day)
        unborn = hit & (birth > e_day)
        death = np.where(alive, e_day + remaining, death)
        death = np.where(unborn, birth + remaining, death)
    dropout = np.floor(np.minimum(death, n_days)).astype(np.int64)  # first day without purchase

    # --- identified visits: customer x week Poisson, then thinning -------------------
    week_day0 = 7 * np.arange(n_w)
    cum_dow = np.concatenate([[0.0], np.cumsum(DOW_WEIGHTS)])
    cum_dow[-1] = 1.0
    lo = np.clip(birth[:, None] - week_day0[None, :], 0, 7)
    hi = np.clip(dropout[:, None] - week_day0[None, :], 0, 7)
    exposure = cum_dow[hi] - cum_dow[lo]  # (C, W)
    del lo, hi
    base = exposure * season[None, :]  # expected visits per unit of lambda
    bound_w = factor_max.copy()
    bound_cw = None
    store_bound = np.ones((n_s, n_w))  # for anonymous baskets
    for e, e_day, is_store, mask in eff:
        up = 1.0 + e.visit_uplift
        if up <= 1.0 or e_day >= n_days:
            continue
        w0 = max(e_day, 0) // 7
        if is_store:
            bound_w[w0:] *= up
            store_bound[mask, w0:] *= up
        else:
            if bound_cw is None:
                bound_cw = np.ones((n_c, n_w))
            bound_cw[np.flatnonzero(mask), w0:] *= up
    rate = lam[:, None] * base * bound_w[None, :]
    if bound_cw is not None:
        rate *= bound_cw
    counts = rng.poisson(rate).ravel()
    del rate
    cells = np.flatnonzero(counts)
    cells = np.repeat(cells, counts[cells])
    cust, week = np.divmod(cells, n_w)
    del cells, counts
    n_v = cust.size

    lo_v = np.clip(birth[cust] - 7 * week, 0, 7)
    hi_v = np.clip(dropout[cust] - 7 * week, 0, 7)
    u = cum_dow[lo_v] + rng.random(n_v) * (cum_dow[hi_v] - cum_dow[lo_v])
    dow = np.clip(np.searchsorted(cum_dow, u, side="right") - 1, lo_v, hi_v - 1)
    day = 7 * week + dow
    del lo_v, hi_v, u
    store = _choose_store(rng, home[cust], region, attract)

    vmult, amult = _effect_multipliers(eff, day, store, cust, n_v)
    keep_p = store_factor[store, week] * vmult / bound_w[week]
    if bound_cw is not None:
        keep_p /= bound_cw[cust, week]
    keep = rng.random(n_v) < keep_p
    cust, store, day, dow, amult = cust[keep], store[keep], day[keep], dow[keep], amult[keep]
    mean_amount = spend[cust] * FORMAT_SPEND[fmt[store]] / FORMAT_SPEND[fmt[home[cust]]]

    # --- anonymous baskets: store x week Poisson, then thinning ---------------------
    if anonymous_share > 0:
        ident = np.bincount(home, weights=lam * base.sum(axis=1), minlength=n_s)
        expected = ident @ _visit_matrix(region, attract)  # identified visits per store
        level = anonymous_share / (1.0 - anonymous_share) * expected / season.sum()
        a_rate = level[:, None] * season[None, :] * store_factor * store_bound
        a_counts = rng.poisson(a_rate).ravel()
        a_cells = np.repeat(np.arange(a_counts.size), a_counts)
        a_store, a_week = np.divmod(a_cells, n_w)
        n_a = a_store.size
        a_dow = np.minimum(np.searchsorted(cum_dow, rng.random(n_a), side="right") - 1, 6)
        a_day = 7 * a_week + a_dow
        a_vmult, a_amult = _effect_multipliers([t for t in eff if t[2]], a_day, a_store, None, n_a)
        a_keep = rng.random(n_a) < a_vmult / store_bound[a_store, a_week]
        a_store, a_day, a_dow, a_amult = (x[a_keep] for x in (a_store, a_day, a_dow, a_amult))
        a_mean = FORMAT_SPEND[fmt[a_store]] * rng.gamma(SPEND_SHAPE, 1 / SPEND_SHAPE, a_store.size)
        cust = np.concatenate([cust, np.full(a_store.size, -1)])
        store = np.concatenate([store, a_store])
        day = np.concatenate([day, a_day])
        dow = np.concatenate([dow, a_dow])
        amult = np.concatenate([amult, a_amult])
        mean_amount = np.concatenate([mean_amount, a_mean])
    del base, exposure

    # --- basket contents and time of day -----------------------------------------
    n_b = cust.size
    amount = np.maximum(rng.gamma(BASKET_SHAPE, mean_amount / BASKET_SHAPE), MIN_AMOUNT)
    is_return = rng.random(n_b) < RETURN_SHARE
    amount = np.where(is_return, -RETURN_FRACTION * amount, amount) * amult
    amount = np.round(amount, 2)
    margin_rate = np.clip(FORMAT_MARGIN[fmt[store]] + rng.normal(0, MARGIN_SD, n_b), 0.02, 0.6)
    margin = np.round(amount * margin_rate, 2)
    items = 1 + rng.poisson(np.maximum(np.abs(amount) / ITEM_PRICE - 1.0, 0.0))
    seconds = _time_of_day(rng, dow == 6)
    ts = day.astype(np.int64) * 86_400 + seconds

    order = np.argsort(ts, kind="stable")
    cust, store, ts = cust[order], store[order], ts[order]
    customer_col = pd.Series(customer_ids).take(np.maximum(cust, 0)).reset_index(drop=True)
    customer_col = customer_col.mask(cust < 0)
    baskets = pd.DataFrame(
        {
            "basket_id": _ids("B", np.arange(1, n_b + 1), 8),
            "customer_id": customer_col,
            "store_id": pd.Series(store_ids).take(store).reset_index(drop=True),
            "date": (start64.astype("datetime64[s]") + ts.astype("timedelta64[s]")).astype(
                "datetime64[ns]"
            ),
            "amount": amount[order],
            "margin": margin[order],
            "items": items[order].astype(np.int64),
        }
    )

    stores_df = pd.DataFrame(
        {
            "store_id": store_ids,
            "region": pd.array(region_names[region], dtype="str"),
            "format": pd.array(np.array(FORMATS)[fmt], dtype="str"),
            "size_m2": size_m2,
            "opened": opened.astype("datetime64[ns]"),
            "attractiveness": attract,
            "growth": growth,
        }
    )
    dropout_date = (start64 + dropout.astype("timedelta64[D]")).astype("datetime64[ns]")
    dropout_date[dropout >= n_days] = np.datetime64("NaT")
    customers_df = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "home_store": pd.Series(store_ids).take(home).reset_index(drop=True),
            "birth": (start64 + birth.astype("timedelta64[D]")).astype("datetime64[ns]"),
            "purchase_rate": lam,
            "dropout_hazard": mu,
            "mean_spend": spend,
            "dropout_date": dropout_date,
        }
    )
    return Chain(
        stores=stores_df,
        baskets=baskets,
        customers=customers_df,
        effects=effects,
        start=start,
        weeks=n_w,
        seed=int(seed),
        store_week_factor=season[None, :] * store_factor,
    )


# --- helpers -------------------------------------------------------------------------


def _is_real(x: object) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise ValueError(f"{name} == {value!r}, must be an integer.")
    if value < minimum:
        raise ValueError(f"{name} == {value!r}, must be >= {minimum}.")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.api.extensions.ExtensionArray:
    """``prefix`` + zero-padded numbers as a pandas string array, built digit by digit."""
    numbers = np.asarray(numbers, dtype=np.int64)
    width = max(width, len(str(int(numbers.max())))) if numbers.size else width
    chars = np.empty((numbers.size, width + 1), dtype=np.uint8)
    chars[:, 0] = ord(prefix)
    rest = numbers.copy()
    for k in range(width, 0, -1):
        rest, digit = np.divmod(rest, 10)
        chars[:, k] = digit + ord("0")
    text = chars.view(f"S{width + 1}").ravel().astype(f"U{width + 1}")
    return pd.array(text, dtype="str")


def _seasonality(start64: np.datetime64, n_weeks: int) -> np.ndarray:
    """Multiplicative seasonality of each week, from the ISO week of its Thursday."""
    thursdays = pd.DatetimeIndex(start64 + 3 + 7 * np.arange(n_weeks))
    woy = np.minimum(thursdays.isocalendar().week.to_numpy(dtype=np.int64), 52)
    s = 1.0 + 0.03 * np.cos(2 * np.pi * (woy - 24) / 52)
    bumps = {1: -0.06, 13: 0.06, 14: 0.06, 15: 0.06, 35: 0.05, 36: 0.05}
    bumps |= dict.fromkeys(range(28, 34), 0.04)
    bumps |= {50: 0.15, 51: 0.30, 52: 0.20}
    extra = np.zeros(54)
    for week_of_year, value in bumps.items():
        extra[week_of_year] = value
    return s * (1.0 + extra[woy])


def _choose_store(
    rng: np.random.Generator, home: np.ndarray, region: np.ndarray, attract: np.ndarray
) -> np.ndarray:
    """Store of each visit: home (0.85), another store of its region (0.10), any (0.05)."""
    n = home.size
    kind = rng.random(n)
    u_region = rng.random(n)
    u_any = rng.random(n)
    store = home.copy()

    # another store of the home region, proportional to attractiveness, home excluded:
    # draw in the region's cumulative attractiveness with the home store's slice removed.
    by_region = np.argsort(region, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(attract[by_region])])
    pos = np.empty_like(by_region)
    pos[by_region] = np.arange(by_region.size)  # position of each store in by_region
    counts = np.bincount(region, minlength=region.max() + 1)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    r = region[home]
    lo, hi = first[r], first[r] + counts[r]
    others = cum[hi] - cum[lo] - attract[home]
    sel = (kind >= P_HOME) & (kind < P_HOME + P_REGION) & (counts[r] > 1)
    target = cum[lo[sel]] + u_region[sel] * others[sel]
    hpos = pos[home[sel]]
    target = np.where(target >= cum[hpos], target + attract[home[sel]], target)
    k = np.clip(np.searchsorted(cum, target, side="right") - 1, lo[sel], hi[sel] - 1)
    store[sel] = by_region[k]

    anywhere = kind >= P_HOME + P_REGION
    cum_all = np.cumsum(attract)
    k = np.searchsorted(cum_all, u_any[anywhere] * cum_all[-1], side="right")
    store[anywhere] = np.minimum(k, attract.size - 1)
    return store


def _visit_matrix(region: np.ndarray, attract: np.ndarray) -> np.ndarray:
    """P[h, s]: probability that a visit of a customer of home store h goes to store s."""
    n = region.size
    p = np.eye(n) * P_HOME
    same = (region[:, None] == region[None, :]) & ~np.eye(n, dtype=bool)
    w = same * attract[None, :]
    total = w.sum(axis=1)
    alone = total == 0
    p[~alone] += P_REGION * w[~alone] / total[~alone, None]
    p[alone, alone.nonzero()[0]] += P_REGION
    p += (1.0 - P_HOME - P_REGION) * attract[None, :] / attract.sum()
    return p


def _effect_multipliers(
    eff: list, day: np.ndarray, store: np.ndarray, cust: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Visit-rate and amount multipliers of each basket from the effects active on its day."""
    vmult = np.ones(n)
    amult = np.ones(n)
    for e, e_day, is_store, mask in eff:
        if e.visit_uplift == 0 and e.basket_uplift == 0:
            continue
        if is_store:
            hit = mask[store]
        elif cust is None:
            continue
        else:
            hit = mask[cust]
        hit &= day >= e_day
        vmult[hit] *= 1.0 + e.visit_uplift
        amult[hit] *= 1.0 + e.basket_uplift
    return vmult, amult


def _time_of_day(rng: np.random.Generator, sunday: np.ndarray) -> np.ndarray:
    """Seconds after midnight: an opening hour from hourly weights, then uniform in it."""
    u = rng.random(sunday.size)
    week_cum = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
    sun_cum = np.cumsum(SUNDAY_HOUR_WEIGHTS) / SUNDAY_HOUR_WEIGHTS.sum()
    hour = np.where(
        sunday,
        np.minimum(np.searchsorted(sun_cum, u, side="right"), sun_cum.size - 1),
        np.minimum(np.searchsorted(week_cum, u, side="right"), week_cum.size - 1),
    )
    return (OPENING_HOUR + hour) * 3600 + rng.integers(0, 3600, sunday.size)
