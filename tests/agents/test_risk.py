import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.risk import NO, YES, RiskLimits, kelly, size_trade

LIMITS = RiskLimits(
    kelly_fraction=0.25, min_edge=0.05, max_position_fraction=0.05, max_exposure_fraction=0.5
)


def sized(probability, price, limits=LIMITS, equity=10000.0, exposure=0.0, position=0.0, cash=None):
    return size_trade(
        probability=probability,
        price=price,
        limits=limits,
        equity=equity,
        exposure=exposure,
        position_exposure=position,
        cash=equity - exposure if cash is None else cash,
    )


def test_kelly_matches_the_design_formulas():
    side, f = kelly(0.7, 0.5)
    assert side == YES and f == pytest.approx((0.7 - 0.5) / (1 - 0.5))
    side, f = kelly(0.2, 0.4)
    assert side == NO and f == pytest.approx((0.4 - 0.2) / 0.4)
    assert kelly(0.4, 0.4) == ("", 0.0)


def test_fractional_kelly_stake_when_no_cap_binds():
    limits = RiskLimits(0.25, 0.05, 1.0, 1.0)
    result = sized(0.6, 0.5, limits=limits)
    # 0.25 * (0.6-0.5)/(1-0.5) * 10000 = 500
    assert result.approved and result.side == YES
    assert result.size == 500.0 and result.price == 0.5
    assert result.reason == "approved: kelly stake 500.00 USD"


def test_no_side_is_bought_at_one_minus_the_yes_price():
    result = sized(0.2, 0.4, limits=RiskLimits(0.1, 0.05, 1.0, 1.0))
    assert result.side == NO and result.price == pytest.approx(0.6)
    assert result.size == 500.0  # 0.1 * 0.5 * 10000


def test_caps_bind_and_say_which():
    assert sized(0.9, 0.5).size == 500.0  # position cap 5% of 10000
    assert "limited by position cap" in sized(0.9, 0.5).reason
    room = sized(0.9, 0.5, exposure=4900.0)
    assert room.size == 100.0 and "limited by exposure cap" in room.reason
    full = sized(0.9, 0.5, exposure=5000.0)
    assert not full.approved and full.reason == "exposure cap leaves no room: 0.00 USD"
    held = sized(0.9, 0.5, position=500.0, exposure=500.0)
    assert not held.approved and held.reason.startswith("position cap leaves no room")


def test_below_min_edge_is_rejected_with_the_numbers():
    result = sized(0.52, 0.5)
    assert not result.approved and result.size == 0
    assert result.reason == "edge below min_edge: |edge| 0.0200 < min_edge 0.0500"


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
price = st.floats(min_value=0.001, max_value=0.999, allow_nan=False)
fraction = st.floats(min_value=0.001, max_value=1.0, allow_nan=False)
money = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)


@settings(deadline=None)  # a pure function; no timing flakiness on a busy machine
@given(
    p=unit,
    q=price,
    kf=fraction,
    min_edge=unit,
    pos_cap=fraction,
    exp_cap=fraction,
    equity=money,
    exposure_share=unit,
    position_share=unit,
)
def test_sizing_properties(
    p, q, kf, min_edge, pos_cap, exp_cap, equity, exposure_share, position_share
):
    limits = RiskLimits(kf, min_edge, pos_cap, exp_cap)
    exposure = equity * exposure_share
    position = exposure * position_share
    result = sized(p, q, limits=limits, equity=equity, exposure=exposure, position=position)
    edge = p - q
    assert result.size >= 0
    assert result.size <= max(pos_cap * equity - position, 0) + 1e-9
    assert result.size <= max(exp_cap * equity - exposure, 0) + 1e-9
    assert result.size <= equity - exposure + 1e-9
    if abs(edge) < min_edge:
        assert result.size == 0 and not result.approved
    if result.approved:
        assert result.size > 0
    if edge > 0:
        assert result.side == YES
    elif edge < 0:
        assert result.side == NO
    else:
        assert result.side == "" and result.size == 0
    assert result.edge == edge
    assert result.reason


def test_zero_edge_says_there_is_no_edge():
    result = sized(0.5, 0.5, limits=RiskLimits(0.25, 0.0, 1.0, 1.0))
    assert not result.approved and result.reason == "no edge: the forecast equals the price"
