import pandas as pd
import pytest

from loyalty_pilot.simulator.rfm import SEGMENTS, score_rfm

# The grid of the issue, written out cell by cell: (R, F) -> segment.
GRID = {
    **{(1, f): "lost" for f in (1, 2)},
    **{(2, f): "hibernating" for f in (1, 2)},
    **{(r, f): "at risk" for r in (1, 2) for f in (3, 4)},
    **{(r, 5): "cannot lose" for r in (1, 2)},
    **{(3, f): "about to sleep" for f in (1, 2)},
    (3, 3): "need attention",
    **{(r, f): "loyal" for r in (3, 4) for f in (4, 5)},
    (4, 1): "promising",
    (5, 1): "new",
    **{(r, f): "potential loyalist" for r in (4, 5) for f in (2, 3)},
    **{(5, f): "champions" for f in (4, 5)},
}


def ten_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:02d}" for i in range(1, 11)],
            "recency_days": [1, 1, 5, 10, 10, 10, 30, 60, 90, 200],
            "frequency": [12, 3, 1, 8, 8, 2, 20, 1, 5, 2],
            "monetary": [500.0, 1000.0, 20.0, 300.0, 300.0, 40.0, 900.0, -10.0, 150.0, 40.0],
        }
    )


def test_hand_worked_scores_segments_and_bands():
    out = score_rfm(ten_customers())
    # n = 10, score = ceil(5 * k / 10), k = customers at or below the value.
    # R on -recency: -1 (x2): k=10 -> 5; -5: k=8 -> 4; -10 (x3): k=7 -> ceil(3.5) = 4;
    #   -30: k=4 -> 2; -60: k=3 -> ceil(1.5) = 2; -90: k=2 -> 1; -200: k=1 -> ceil(0.5) = 1.
    assert out["r_score"].tolist() == [5, 5, 4, 4, 4, 4, 2, 2, 1, 1]
    # F, sorted 1 1 2 2 3 5 8 8 12 20: 12: k=9 -> 5; 3: k=5 -> 3; 1: k=2 -> 1;
    #   8: k=8 -> 4; 2: k=4 -> 2; 20: k=10 -> 5; 5: k=6 -> 3.
    assert out["f_score"].tolist() == [5, 3, 1, 4, 4, 2, 5, 1, 3, 2]
    # M, sorted -10 20 40 40 150 300 300 500 900 1000: 500: k=8 -> 4; 1000: k=10 -> 5;
    #   20: k=2 -> 1; 300: k=7 -> 4; 40: k=4 -> 2; 900: k=9 -> 5; -10: k=1 -> 1; 150: k=5 -> 3.
    assert out["m_score"].tolist() == [4, 5, 1, 4, 4, 2, 5, 1, 3, 2]
    assert out["rfm_score"].tolist() == [
        "554", "535", "411", "444", "444", "422", "255", "211", "133", "122",
    ]  # fmt: skip
    assert out["segment"].tolist() == [
        "champions",  # R5 F5
        "potential loyalist",  # R5 F3
        "promising",  # R4 F1
        "loyal",  # R4 F4
        "loyal",
        "potential loyalist",  # R4 F2
        "cannot lose",  # R2 F5
        "hibernating",  # R2 F1
        "at risk",  # R1 F3
        "lost",  # R1 F2
    ]
    assert out["value_band"].tolist() == [
        "medium", "best", "small", "medium", "medium", "small", "best", "small", "medium", "small",
    ]  # fmt: skip
    for column in ("r_score", "f_score", "m_score"):
        assert out[column].dtype == "int64"


def test_input_columns_index_and_order_are_kept():
    table = ten_customers().iloc[::-1].set_index(pd.Index(range(100, 110)))
    table["store"] = "S1"
    out = score_rfm(table)
    assert out.index.tolist() == list(range(100, 110))
    assert out["customer_id"].tolist() == table["customer_id"].tolist()
    assert out["store"].eq("S1").all()
    pd.testing.assert_frame_equal(out[table.columns], table)
    # scores do not depend on row order
    by_id = out.set_index("customer_id")["rfm_score"].sort_index()
    assert by_id.tolist() == score_rfm(ten_customers())["rfm_score"].tolist()


def test_every_cell_of_the_grid():
    # 25 customers, one per (R, F) cell; 5 customers tie on each recency and frequency
    # value, so k = 5 * level and the score is ceil(5 * 5 * level / 25) = level.
    cells = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    table = pd.DataFrame(
        {
            "customer_id": [f"r{r}f{f}" for r, f in cells],
            "recency_days": [100 - 10 * r for r, _ in cells],
            "frequency": [f for _, f in cells],
            "monetary": [float(f) for _, f in cells],
        }
    )
    out = score_rfm(table)
    assert list(zip(out["r_score"], out["f_score"], strict=True)) == cells
    assert out["segment"].tolist() == [GRID[cell] for cell in cells]
    assert set(out["segment"]) == set(SEGMENTS)
    assert len(SEGMENTS) == len(set(SEGMENTS)) == 11
    assert out["value_band"].tolist() == [
        {1: "small", 2: "small", 3: "medium", 4: "medium", 5: "best"}[f] for _, f in cells
    ]


def test_all_tied_and_single_customer_score_five():
    table = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "recency_days": [3] * 3, "frequency": [2] * 3,
         "monetary": [10.0] * 3}
    )  # fmt: skip
    out = score_rfm(table)
    assert out["rfm_score"].tolist() == ["555"] * 3
    assert score_rfm(table.iloc[:1])["segment"].tolist() == ["champions"]


def test_empty_input_gives_empty_frame_with_columns():
    out = score_rfm(ten_customers().iloc[:0])
    assert out.empty
    assert list(out.columns) == [
        "customer_id", "recency_days", "frequency", "monetary",
        "r_score", "f_score", "m_score", "rfm_score", "segment", "value_band",
    ]  # fmt: skip
    assert out["r_score"].dtype == "int64"


@pytest.mark.parametrize("column", ["customer_id", "recency_days", "frequency", "monetary"])
def test_missing_column_is_named(column):
    with pytest.raises(ValueError, match=f"'{column}'"):
        score_rfm(ten_customers().drop(columns=column))


def test_bad_values_are_rejected():
    table = ten_customers()
    table.loc[3, "monetary"] = float("nan")
    with pytest.raises(ValueError, match="'monetary' has missing values"):
        score_rfm(table)
    table = ten_customers()
    table.loc[3, "customer_id"] = "c01"
    with pytest.raises(ValueError, match="repeats customer 'c01'"):
        score_rfm(table)
    table = ten_customers().astype({"frequency": str})
    with pytest.raises(ValueError, match="'frequency' must be numeric"):
        score_rfm(table)
