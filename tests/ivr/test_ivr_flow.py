"""Flow files: the default flow checks clean; broken flows name FILE:LINE and the problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.flow import DEFAULT_FLOW, FlowError, FlowStore, MenuNode, load_flow
from ivr.survey import SURVEY_PROMPTS

CATALOGUE = {
    pid: {"zh": f"{pid} 中文", "en": f"{pid} English"}
    for pid in ("hello", "menu", "bye", "invalid_input", "no_input", "connecting", "enter_pin")
}

GOOD = """\
flow:
  id: test
  start: hello
  languages: [zh, en]
  nodes:
    hello:
      type: play
      prompts: [hello]
      next: menu
    menu:
      type: menu
      prompts: [menu]
      choices:
        "1": bye
        "0": operator
      on_failure: operator
    operator:
      type: queue
      queue: operator
      skill: general
      topic: general
      on_failure: bye
    bye:
      type: hangup
      prompts: [bye]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the (unique) line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FlowError) as info:
        load_flow(write(tmp_path, text), CATALOGUE)
    return [str(p) for p in info.value.problems]


def test_good_flow_loads(tmp_path):
    flow = load_flow(write(tmp_path, GOOD), CATALOGUE)
    assert flow.start == "hello" and flow.languages == ("zh", "en")
    assert isinstance(flow.nodes["menu"], MenuNode)
    assert flow.nodes["menu"].choices == {"1": "bye", "0": "operator"}
    assert flow.nodes["menu"].line == 10 and flow.warnings == ()


def test_default_flow_and_survey_prompts_are_all_in_the_catalogue(default_flow, catalogue):
    assert default_flow.warnings == ()
    for prompt in default_flow.prompt_ids() | set(SURVEY_PROMPTS):
        assert catalogue[prompt]["zh"] and catalogue[prompt]["en"], prompt
    assert "满意请按1，基本满意请按2，不满意请按3" in catalogue["survey_question"]["zh"]
    assert {"welcome", "goodbye"} <= set(catalogue)


def test_default_flow_main_menu_is_the_one_asked_for(default_flow):
    menu = default_flow.nodes["main_menu"]
    assert sorted(menu.choices) == ["0", "1", "2", "3", "4", "5", "8", "9"]
    # 8: the emergency key, confirmed before the transfer to 110.
    assert menu.choices["8"] == "emergency_confirm"
    consult = default_flow.nodes["consult_menu"]
    assert sorted(consult.choices) == ["0", "1", "2", "3", "4", "5", "6"]


def test_unknown_node_type(tmp_path):
    text = GOOD.replace("type: hangup", "type: hang_up")
    path = tmp_path / "flow.yaml"
    assert problems(tmp_path, text) == [
        f"{path}:{line_of(text, 'hang_up')}: node 'bye': unknown node type 'hang_up' (expected "
        "one of play, info, menu, language, collect, hours, condition, queue, transfer, record, "
        "callback, lookup, hangup)"
    ]


def test_missing_target(tmp_path):
    text = GOOD.replace('"1": bye', '"1": goodbye')
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:14: node 'menu': choices 1: no node named 'goodbye'"
    ]


def test_bad_prompt_id(tmp_path):
    text = GOOD.replace("prompts: [menu]", "prompts: [menuu]")
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:12: prompt 'menuu' is not in the prompt catalogue"
    ]


def test_prompt_without_text_for_a_declared_language(tmp_path):
    text = GOOD.replace("languages: [zh, en]", "languages: [zh, en, mn]")
    found = problems(tmp_path, text)
    assert f"{tmp_path / 'flow.yaml'}:8: prompt 'hello' has no 'mn' text in the catalogue" in found


def test_duplicate_menu_digit(tmp_path):
    text = GOOD.replace('        "0": operator\n', '        "0": operator\n        "1": operator\n')
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:16: node 'menu': choices: digit '1' is used twice "
        "(first on line 14)"
    ]


def test_duplicate_node_id(tmp_path):
    text = GOOD + "    hello:\n      type: play\n      prompts: [hello]\n      next: menu\n"
    found = problems(tmp_path, text)
    assert found == [
        f"{tmp_path / 'flow.yaml'}:26: flow: nodes: key 'hello' is given twice (first on line 6)"
    ]


def test_menu_without_zero_breaks_gbt_33358(tmp_path):
    text = GOOD.replace('        "0": operator\n', "")
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:10: node 'menu': GB/T 33358 needs digit 0 to reach a person "
        "(add a choice 0 leading to a queue node)"
    ]


def test_menu_failure_must_reach_a_person(tmp_path):
    text = GOOD.replace("on_failure: operator", "on_failure: bye")
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:10: node 'menu': on_failure must reach a person (a queue "
        "node) without further input; it can reach hangup node 'bye' instead"
    ]


def test_loop_without_input(tmp_path):
    text = GOOD.replace("next: menu", "next: again") + textwrap.indent(
        "again:\n  type: play\n  prompts: [hello]\n  next: hello\n", "    "
    )
    found = problems(tmp_path, text)
    assert len(found) == 1 and "loop without caller input: hello → again → hello" in found[0]
    assert found[0].startswith(f"{tmp_path / 'flow.yaml'}:")


def test_unreachable_node_is_a_warning(tmp_path):
    text = GOOD + "    lost:\n      type: hangup\n"
    flow = load_flow(write(tmp_path, text), CATALOGUE)
    assert flow.warnings == (f"{tmp_path / 'flow.yaml'}:26: node 'lost' is unreachable",)


def test_unknown_key_and_missing_key(tmp_path):
    text = GOOD.replace("      next: menu\n", "      nxt: menu\n")
    path = tmp_path / "flow.yaml"
    found = problems(tmp_path, text)
    assert found[0].startswith(f"{path}:9: node 'hello': unknown key 'nxt' for a play node")
    assert found[1] == f"{path}:6: node 'hello': a play node needs key 'next'"


def test_bad_values_are_named(tmp_path):
    text = GOOD.replace(
        "      on_failure: operator\n", "      on_failure: operator\n      timeout: soon\n"
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:17: node 'menu': timeout must be a number of seconds ≥ 0, "
        "got 'soon'"
    ]


def test_not_a_phone_key(tmp_path):
    text = GOOD.replace('"1": bye', '"12": bye')
    assert problems(tmp_path, text)[0].startswith(
        f"{tmp_path / 'flow.yaml'}:14: node 'menu': choices: '12' is not a phone key"
    )


def test_yaml_syntax_error_has_a_line(tmp_path):
    text = GOOD.replace("      prompts: [menu]", "      prompts: [menu")
    found = problems(tmp_path, text)
    assert len(found) == 1 and "not valid YAML" in found[0]
    assert found[0].startswith(f"{tmp_path / 'flow.yaml'}:13:")


def test_hours_node_needs_a_calendar(tmp_path):
    text = GOOD.replace("      next: menu", "      next: check") + textwrap.indent(
        "check:\n  type: hours\n  open: menu\n  closed: menu\n", "    "
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'flow.yaml'}:1: flow: hours nodes need a 'calendar' section"
    ]


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("type: hangup", "type: nope").replace("skill: general", "skil: general")
    found = problems(tmp_path, text)
    assert len(found) == 3, found
    assert "flow.yaml:20: node 'operator': unknown key 'skil'" in found[0]
    assert "flow.yaml:17: node 'operator': a queue node needs key 'skill'" in found[1]
    assert "flow.yaml:24: node 'bye': unknown node type 'nope'" in found[2]


def test_collect_checks(tmp_path):
    text = GOOD.replace('"1": bye', '"1": pin') + textwrap.indent(
        textwrap.dedent("""\
        pin:
          type: collect
          prompts: [enter_pin]
          min_length: 6
          max_length: 4
          pattern: '[0-9'
          store_as: pin
          next: bye
          on_failure: bye
        """),
        "    ",
    )
    found = problems(tmp_path, text)
    path = tmp_path / "flow.yaml"
    assert found[0].startswith(f"{path}:31: node 'pin': pattern: '[0-9' is not a valid regular")


def test_store_keeps_the_old_flow_when_a_reload_is_broken(tmp_path):
    path = write(tmp_path, GOOD)
    store = FlowStore(path, CATALOGUE)
    old = store.current
    path.write_text(GOOD.replace("type: hangup", "type: nope"), encoding="utf-8")
    error = store.reload()
    assert isinstance(error, FlowError) and store.current is old
    assert "unknown node type 'nope'" in str(error)
    path.write_text(GOOD.replace("prompts: [bye]", "prompts: [hello]"), encoding="utf-8")
    assert store.reload() is None and store.current is not old


def test_a_broken_flow_refuses_to_start(tmp_path):
    path = write(tmp_path, GOOD.replace('"0": operator', '"0": nowhere'))
    with pytest.raises(FlowError, match=r"flow.yaml:15: node 'menu': choices 0: no node named"):
        FlowStore(path, CATALOGUE)


def test_missing_file(tmp_path):
    with pytest.raises(FlowError, match="cannot read the flow file"):
        load_flow(tmp_path / "none.yaml", CATALOGUE)


def test_default_flow_file_is_the_packaged_one():
    assert DEFAULT_FLOW.exists() and DEFAULT_FLOW.parent.name == "flows"
