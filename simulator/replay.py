"""Exact replay of a programme variant on historical baskets.

What the variant would have cost on the chain's own baskets, before any assumption about
behaviour. The rules below are the specification; ``tests/simulator/reference_replay.py``
implements them independently with plain Python loops and the tests require both to agree
exactly.

Input
-----
``baskets``: a DataFrame with ``customer_id`` (missing = anonymous), ``basket_id``,
``date`` (date or timestamp), ``amount``; optional ``department`` (needed when the
programme has department multipliers; a department without a multiplier counts 1).
Money is counted in cents: ``cents = round(amount * 100)``; spends and thresholds are
compared in cents, so no rounding error decides a tier.

Rules
-----
R1 Window. The replay runs from ``start`` (argument, else ``programme.start``, else the
   first basket's date) to ``end`` (argument, else the last basket's date), inclusive.
   Baskets outside the window are ignored. Revenue counts every basket in the window.
R2 Enrolment. The identified customers with a basket in the window, sorted by
   ``customer_id`` (as strings), receive ``u = rng.random(n)`` from
   ``numpy.random.default_rng(seed)``; a customer enrols iff ``u < uptake`` (all when
   uptake is 1). Then ``v = rng.random(n)`` (drawn even if unused) picks each customer's
   point reward by inverse CDF over the rewards' shares in catalogue order
   (``index = searchsorted(cumsum(shares), v, side='right')``, clipped to the last).
   A member enrols on the date of its first basket in the window.
R3 Order. A member's baskets are processed in order of (timestamp, basket_id); only
   baskets on or after enrolment (all of the member's baskets in the window) count.
R4 Tier. The tier of a basket is the highest tier whose ``min_spend_12m`` (in cents) is
   <= the member's spend in cents over the member's earlier baskets (in the order of R3)
   dated strictly after ``date - 365 days``. Returns count (net spend).
R5 Points. A basket with amount > 0 earns
   ``floor(cents * rate / 100 + 1e-9)`` points with
   ``rate = points_per_currency * department_multiplier * tier_multiplier`` (multiplied in
   that order). Returns and zero baskets earn nothing. The first basket also credits the
   welcome bonus. Points are integers.
R6 Inactivity expiry. If a member's next basket comes ``inactivity_days`` or more days
   after the previous one (by date), the whole balance lapses on day
   ``previous date + inactivity_days``, before that next basket. After the member's last
   basket the balance lapses on that day too if it is <= ``end``.
R7 Fixed validity (``validity_years = k``). At the end of every 31 December in the window
   (after that day's baskets), the points still in the balance that were credited in a
   year <= Y - k expire. Balances are used oldest first, so the expired amount is
   ``max(0, balance - points credited in years Y-k+1..Y since the balance last lapsed)``
   (for k = 0 the whole balance). On the same day an inactivity lapse comes first.
R8 Conversion. After a basket's points are credited, while the balance is >= the
   member's reward threshold a reward is issued and its points are deducted (several in
   one basket when due; the welcome bonus counts).
R9 Redemption. A reward issued on date d is redeemed at the member's next basket (the
   next in the order of R3) if that basket is dated <= d + validity_days, with
   probability ``redemption.rate``; otherwise it expires unredeemed on
   d + validity_days (breakage). In expected mode each reward counts ``rate`` redeemed
   and ``1 - rate`` expiring on d + validity_days even when a basket follows; in sampled
   mode the number redeemed among the n rewards issued at a basket is
   ``rng.binomial(n, rate)`` for the issuing baskets in (customer_id, order) sequence,
   drawn after R2's draws. A redeemed reward costs its face value (cash) or unit cost
   (gift); an expired one is breakage at the same valuation.
R10 Discounts. A member's basket costs ``cents / 100 * rate`` in discount with
   ``rate = discount card rate + progressive rate + tier benefit discount_rate``; the
   progressive rate is that of the highest step whose ``from_spend`` (cents) is <= the
   member's spend in cents over its earlier baskets of the same calendar year. Returns
   give the discount back (negative cost).
R11 Monthly costs. The ledger has one row per calendar month from the month of
   ``start`` to the month of ``end``; its snapshot day is min(month end, end). Events
   (lapses, expiries) count in the month of their day, and only when the day is
   <= ``end``. For each month: running cost
   ``running_cost_per_member_year / 12`` per member enrolled on or before that day; tier
   benefit cost ``cost_per_member_year / 12`` per member in that tier on that day (tier
   from the spend over baskets dated in (day - 365, day]); expected referral cost
   ``rate_per_member_year / 12 * members * (bonus_referrer + bonus_referee) *
   point_value * redemption.rate`` with ``point_value`` the share-weighted cost per point
   of the point rewards; "members" and "tier" are taken on the snapshot day, and the
   month of ``end`` counts whole.
R12 Liability (IFRS 15 style, on each snapshot day, in both modes): outstanding points
   valued at the member's reward cost per point times the redemption rate, plus, for each
   reward still pending (issued on or before the day and not yet resolved), its cost
   times the redemption rate. A reward is resolved on its next basket's date when that
   basket comes within the validity, else on d + validity_days. The expected breakage is
   not a liability.

Output
------
``ReplayResult.ledger``: one row per month with ``month`` (first day), ``snapshot``,
``revenue`` (all baskets of the month in the window), ``members_revenue``,
``new_members``, ``members`` (enrolled on or before the snapshot), ``active_members``
(members with a basket in the month), ``points_earned`` (R5, without the welcome bonus),
``welcome_points``, ``points_expired_inactivity`` (R6), ``points_expired_validity``
(R7), ``points_converted``, ``rewards_issued`` (count), ``rewards_issued_cost``,
``rewards_issued_perceived`` (gifts at retail value), ``rewards_redeemed`` (count,
expected or sampled), ``redemption_cost``, ``rewards_expired`` (count), ``breakage``
(at cost), ``discount_cost``, ``tier_benefit_cost``, ``running_cost``, ``referral_cost``,
``total_cost`` (redemption + discount + tier benefit + running + referral),
``outstanding_points``, ``pending_rewards``, ``liability`` and, with tiers, one
``members_tier_<name>`` column per tier (members in the tier on the snapshot day).

``ReplayResult.customers``: one row per member, sorted by ``customer_id``:
``customer_id``, ``enrolled`` (date), ``reward`` (index of the chosen point reward, -1
without point rewards), ``baskets``, ``spend``, ``points_earned`` (with the welcome
bonus), ``points_expired``, ``rewards_issued``, ``rewards_redeemed``,
``first_reward_date`` (NaT if none), ``days_to_first_reward`` (NaN if none),
``tier_end`` (tier on the last snapshot, "" without tiers), ``top_tier`` (highest tier
of any of its baskets or snapshots, "" without tiers), ``balance_end``.
"""
