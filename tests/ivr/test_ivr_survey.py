"""The post-call survey: 1/2/3 count; a timeout, a wrong key or a hang-up is never satisfied."""

from __future__ import annotations

import pytest

from ivr.interpreter import (
    CallerHungUp,
    CancelTimer,
    DigitPressed,
    Hangup,
    IvrProtocolError,
    Log,
    Play,
    PromptFinished,
    StartTimer,
    StopPlayback,
    TimerExpired,
)
from ivr.survey import SurveyResult, SurveyRun


def started() -> tuple[SurveyRun, list]:
    run = SurveyRun("c1", answered=True)
    return run, run.start()


def test_offer_plays_the_question():
    _, out = started()
    assert out == [
        Log("survey.offered", {"call_id": "c1"}),
        Play(("survey_question",), interruptible=True),
    ]


@pytest.mark.parametrize(
    ("key", "result"),
    [
        ("1", SurveyResult.SATISFIED),
        ("2", SurveyResult.BASICALLY_SATISFIED),
        ("3", SurveyResult.DISSATISFIED),
    ],
)
def test_answers_after_the_question(key, result):
    run, _ = started()
    assert run.handle(PromptFinished()) == [StartTimer("survey:1", 8.0)]
    out = run.handle(DigitPressed(key))
    assert out == [
        CancelTimer("survey:1"),
        Log("survey.answered", {"call_id": "c1", "result": result.value, "key": key}),
        Play(("survey_thanks",), interruptible=False),
    ]
    assert run.handle(PromptFinished()) == [Hangup("survey_done")]
    assert run.result is result


def test_barge_in_counts_at_once():
    run, _ = started()
    out = run.handle(DigitPressed("2"))
    assert out[0] == StopPlayback() and run.result is SurveyResult.BASICALLY_SATISFIED


def test_one_retry_on_a_wrong_key_then_a_valid_answer():
    run, _ = started()
    out = run.handle(DigitPressed("9"))
    assert out[-1] == Play(("survey_invalid", "survey_question"), interruptible=True)
    assert run.result is None
    run.handle(DigitPressed("1"))
    assert run.result is SurveyResult.SATISFIED


def test_two_wrong_keys_are_not_rated():
    run, _ = started()
    run.handle(DigitPressed("9"))
    out = run.handle(DigitPressed("#"))
    assert run.result is SurveyResult.NOT_RATED
    assert (
        Log("survey.not_rated", {"call_id": "c1", "result": "not_rated", "reason": "invalid"})
        in out
    )


def test_timeout_is_not_rated_without_retry():
    run, _ = started()
    run.handle(PromptFinished())
    out = run.handle(TimerExpired("survey:1"))
    assert run.result is SurveyResult.NOT_RATED
    assert out[-1] == Play(("goodbye",), interruptible=False)


def test_hang_up_is_not_rated_and_an_answer_survives_a_hang_up():
    run, _ = started()
    out = run.handle(CallerHungUp())
    assert run.result is SurveyResult.NOT_RATED and out[0].type == "survey.not_rated"
    rated, _ = started()
    rated.handle(DigitPressed("3"))
    assert rated.handle(CallerHungUp()) == []
    assert rated.result is SurveyResult.DISSATISFIED


def test_only_one_evaluation():
    run, _ = started()
    run.handle(DigitPressed("1"))
    assert run.handle(DigitPressed("3")) == []  # during the thanks: no second evaluation
    assert run.result is SurveyResult.SATISFIED
    run.handle(PromptFinished())
    with pytest.raises(IvrProtocolError, match=r"DigitPressed .*ENDED"):
        run.handle(DigitPressed("3"))
    with pytest.raises(IvrProtocolError, match="already started"):
        run.start()


def test_unanswered_call_is_not_surveyed():
    with pytest.raises(ValueError, match="only an answered call"):
        SurveyRun("c2", answered=False)


def test_unknown_timer_raises():
    run, _ = started()
    with pytest.raises(IvrProtocolError, match="no such survey timer"):
        run.handle(TimerExpired("x"))
