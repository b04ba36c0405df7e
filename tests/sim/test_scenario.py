"""Scenario files: the shipped ones load, bad ones fail with the key named; draws are sane."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from sim.callers import NumberPlan, arrival_times
from sim.scenario import (
    SCENARIO_DIR,
    Arrivals,
    Distribution,
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from sim.truth import TruthCall, true_kpis


def smoke_data() -> dict:
    return yaml.safe_load((SCENARIO_DIR / "smoke.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["smoke", "peak-hour", "overload"])
def test_shipped_scenarios_load(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.seats.count > 0


def test_peak_hour_is_what_the_issue_asks():
    sc = load_scenario("peak-hour")
    assert sc.arrivals.rate_per_hour == 300 and sc.seats.count == 25
    assert 280 <= sc.seats.talk.mean <= 320


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["callers"].update(patience={"exponential": 5, "fixed": 3}),
         "callers.patience: give exactly one of fixed, exponential, uniform, lognormal"),
        (lambda d: d["seats"].update(count=-1), "seats.count: Input should be greater"),
        (lambda d: d["callers"]["paths"][0].update(keys="1a"), "callers.paths.0.keys"),
        (lambda d: d.update(durationn=5), "durationn: unknown key"),
        (lambda d: d["callers"].update(survey={"great": 1}), "callers.survey: unknown answers"),
        (lambda d: d["arrivals"].update(profile={25: 1.0}), "arrivals.profile: hour 25"),
        (lambda d: d["seats"].update(answer_delay={"uniform": [3, 1]}),
         "seats.answer_delay: uniform: the low bound"),
        (lambda d: d["callers"].update(special_group={"share": 0.5}),
         "callers.special_group: share > 0 needs numbers"),
        (lambda d: d["seats"].update(count=0), "seats.count: paths ask for a queue"),
        (lambda d: d.pop("arrivals"), "arrivals: Field required"),
    ],
)  # fmt: skip
def test_bad_scenarios_name_the_key(change, expected):
    data = smoke_data()
    change(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "bad.yaml")
    assert expected in str(info.value), str(info.value)
    assert "bad.yaml" in str(info.value)


def test_missing_scenario_lists_the_shipped_ones(tmp_path: Path):
    with pytest.raises(ScenarioError, match="shipped scenarios: overload, peak-hour, smoke"):
        load_scenario(tmp_path / "nope.yaml")


def test_invalid_yaml_is_reported(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(path)


def test_distributions_draw_around_their_mean():
    rng = random.Random(1)
    for dist in (
        Distribution(exponential=60),
        Distribution(uniform=(10, 20)),
        Distribution.model_validate({"lognormal": {"median": 240, "sigma": 0.5}}),
        Distribution.model_validate(7),
    ):
        draws = [dist.draw(rng) for _ in range(20000)]
        assert min(draws) >= 0
        assert abs(sum(draws) / len(draws) - dist.mean) < 0.03 * dist.mean


def test_arrivals_follow_the_hour_profile():
    arrivals = Arrivals(rate_per_hour=3600, profile={10: 2.0, 11: 0.0}, time_scale=3600)
    # time_scale 3600: one real second is one simulated hour, so 10 s cover hours 9..18.
    times = list(arrival_times(arrivals, 10.0, random.Random(3), start_hour=9))
    per_hour = [sum(1 for t in times if int(t) == h) for h in range(10)]
    assert per_hour[1] > 0 and per_hour[2] == 0  # hour 10 busy, hour 11 closed
    # A constant rate gives a Poisson count: 3600/h over 200 s is about 200 arrivals.
    flat = list(arrival_times(Arrivals(rate_per_hour=3600), 200.0, random.Random(4)))
    assert 150 < len(flat) < 250
    assert flat == sorted(flat)


def test_numbers_have_unique_masks_that_seats_can_read_back():
    from hotline.privacy import mask_number

    plan = NumberPlan(random.Random(5), "139")
    numbers = [plan.take() for _ in range(500)]
    masks = {mask_number(n) for n in numbers}
    assert len(masks) == 500
    # The ACD shows seats the mask with zeros: that is the number itself.
    assert all(mask_number(n).replace("*", "0") == n for n in numbers)


def test_true_kpis_follow_the_design_definitions():
    def call(i, **kw):
        base = {"sim_id": f"k{i}", "number": "x", "masked": "x", "path": "p", "keys": "111",
                "wanted_queue": "q", "connected_at": 0.0}  # fmt: skip
        return TruthCall(**{**base, **kw})

    calls = [
        call(1, asked_at=10.0, answered_at=20.0, seat="s1", seat_hungup_at=80.0,
             survey="satisfied", ended_at=90.0, hangup_by="system"),
        call(2, asked_at=10.0, ended_at=12.0, hangup_by="caller"),  # short abandon
        call(3, asked_at=10.0, ended_at=40.0, hangup_by="caller"),  # abandon
        call(4, asked_at=10.0, callback_requested_at=70.0, ended_at=75.0, hangup_by="system"),
        call(5, wanted_queue=None, ended_at=20.0, hangup_by="caller"),  # self-service
        call(6, connected_at=None, failed="rejected: 503"),
    ]  # fmt: skip
    kpis = true_kpis(calls)
    assert kpis["placed"] == 6 and kpis["failed"] == 1
    assert kpis["asked_for_seat"] == 4 and kpis["answered"] == 1
    assert kpis["abandoned"] == 2 and kpis["short_abandoned"] == 1
    assert kpis["callback_requested"] == 1
    assert kpis["answer_rate"] == pytest.approx(1 / 3)  # short abandon excluded
    assert kpis["service_level"] == 1.0 and kpis["asa_s"] == 10.0
    assert kpis["avg_talk_s"] == 60.0 and kpis["satisfaction"] == 1.0
