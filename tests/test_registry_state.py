"""The registry's read model on synthetic events: no git, milliseconds.

Stage holders, undo stacks, rollback targets, retirement and the order of events within
one second are rules of ``modelops.registry.state`` alone; the end-to-end tests check that
real tags produce these events.
"""

from __future__ import annotations

import json
import random

import pytest

from modelops.errors import RegistryError, UsageError
from modelops.params import RegistryParams
from modelops.registry.ops import rollback_target
from modelops.registry.state import (
    ASSIGN,
    DEPRECATE,
    DEREGISTER,
    REGISTER,
    UNASSIGN,
    Event,
    State,
    check_name,
    check_stage,
    need_version,
    next_version,
    parse_tags,
    resolve,
    split_ref,
)

AUTHOR = "Test Author <author@example.invalid>"


def registered(version: str, t: int, name: str = "model") -> Event:
    return Event(
        REGISTER, name, f"{name}@{version}", f"c-{version}", version, None, None, AUTHOR, t,
        f"Register {name} {version}\n\n" + json.dumps({"action": "register"}),
    )  # fmt: skip


def assigned(
    stage: str, n: int, t: int, version: str | None, action: str = "promote", name: str = "model"
) -> Event:
    """``name#stage#n``; the version is in the message, as modelops writes it."""
    data = {"action": action, "version": version} if version else {}
    return Event(
        ASSIGN, name, f"{name}#{stage}#{n}", f"c-{version}", None, stage, n, AUTHOR, t,
        f"{action} {version}\n\n" + json.dumps(data),
    )  # fmt: skip


def retired(version: str, t: int, name: str = "model") -> Event:
    return Event(
        DEREGISTER, name, f"{name}@{version}!", f"c-{version}", version, None, None, AUTHOR, t,
        f"Retire {name} {version}",
    )  # fmt: skip


def three_versions() -> list[Event]:
    return [registered("v0.0.1", 100), registered("v0.0.2", 110), registered("v0.0.3", 120)]


# -- holders, versions and ordering ---------------------------------------------------------
def test_the_latest_assignment_holds_the_stage_and_versions_list_highest_first():
    events = [registered("v0.9.0", 100), registered("v0.10.0", 101), registered("v0.2.0", 102)]
    events += [assigned("prod", 1, 200, "v0.9.0"), assigned("prod", 2, 201, "v0.10.0")]
    events += [assigned("dev", 1, 202, "v0.9.0")]
    st = State(events)
    assert st.holder("model", "prod") == "v0.10.0"
    assert st.holder("model", "staging") is None
    # SemVer order, not string order (v0.10.0 > v0.9.0 > v0.2.0)
    versions = st.versions("model")
    assert list(versions) == ["v0.10.0", "v0.9.0", "v0.2.0"]
    assert {v: i.stages for v, i in versions.items()} == {
        "v0.10.0": ["prod"],
        "v0.9.0": ["dev"],
        "v0.2.0": [],
    }
    assert st.names() == ["model"]


def test_events_are_ordered_by_time_then_counter_whatever_order_they_come_in():
    """Within one second (tag times are whole seconds) GTO's #N counter is the order, and a
    registration (no counter) comes before an assignment of the same second."""
    events = [
        registered("v0.0.1", 100),
        registered("v0.0.2", 100),
        assigned("prod", 1, 100, "v0.0.1"),
        assigned("prod", 2, 100, "v0.0.2"),
        assigned("prod", 3, 100, "v0.0.1", action="rollback"),
    ]
    expected = [e.tag for e in events]
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        st = State(shuffled)
        assert [e.tag for e in st.events] == expected
        assert st.holder("model", "prod") == "v0.0.1"
        assert st.stage_stack("model", "prod") == ["v0.0.1"]


def test_a_later_second_beats_a_higher_counter():
    """The order is tagger time first: what DVC resolves by, and why assignments are spaced
    one second apart when they are written."""
    events = [
        *three_versions(),
        assigned("prod", 5, 200, "v0.0.2"),
        assigned("prod", 4, 201, "v0.0.3"),
    ]
    assert State(events).holder("model", "prod") == "v0.0.3"


def test_an_assignment_without_a_version_takes_the_one_registered_at_its_commit():
    bare = Event(ASSIGN, "model", "model#dev#1", "c-v0.0.2", None, "dev", 1, AUTHOR, 200, "x")
    st = State([*three_versions(), bare])
    assert st.events[-1].version == "v0.0.2"
    assert st.holder("model", "dev") == "v0.0.2"


def test_unassign_empties_the_stage_and_its_stack():
    events = [
        *three_versions(),
        assigned("prod", 1, 200, "v0.0.1"),
        assigned("prod", 2, 201, "v0.0.2"),
        Event(UNASSIGN, "model", "model#prod!#3", "c-v0.0.2", "v0.0.2", "prod", 3, AUTHOR, 202, ""),
    ]
    st = State(events)
    assert st.holder("model", "prod") is None
    assert st.stage_stack("model", "prod") == []
    with pytest.raises(RegistryError, match="no version of model holds stage 'prod'"):
        resolve(st, "model", stage="prod")


# -- the undo stack and rollback ------------------------------------------------------------
def test_promotions_push_and_rollbacks_pop():
    events = [
        *three_versions(),
        assigned("prod", 1, 200, "v0.0.1"),
        assigned("prod", 2, 201, "v0.0.2"),
        assigned("prod", 3, 202, "v0.0.2"),  # the same holder again pushes nothing
        assigned("prod", 4, 203, "v0.0.3"),
    ]
    assert State(events).stage_stack("model", "prod") == ["v0.0.1", "v0.0.2", "v0.0.3"]
    events.append(assigned("prod", 5, 204, "v0.0.2", action="rollback"))
    st = State(events)
    assert st.stage_stack("model", "prod") == ["v0.0.1", "v0.0.2"]
    assert rollback_target(st, "model", "prod", None) == ("v0.0.2", "v0.0.1")
    events.append(assigned("prod", 6, 205, "v0.0.1", action="rollback"))
    st = State(events)
    assert st.stage_stack("model", "prod") == ["v0.0.1"]
    with pytest.raises(RegistryError, match="'prod' has no earlier holder of model"):
        rollback_target(st, "model", "prod", None)


def test_rollback_skips_retired_versions_and_checks_to():
    events = [
        *three_versions(),
        assigned("prod", 1, 200, "v0.0.1"),
        assigned("prod", 2, 201, "v0.0.2"),
        assigned("prod", 3, 202, "v0.0.3"),
        retired("v0.0.2", 203),
    ]
    st = State(events)
    assert rollback_target(st, "model", "prod", None) == ("v0.0.3", "v0.0.1")
    assert rollback_target(st, "model", "prod", "v0.0.1") == ("v0.0.3", "v0.0.1")
    with pytest.raises(RegistryError, match=r"model@v0.0.2 is retired; roll back to another"):
        rollback_target(st, "model", "prod", "v0.0.2")
    with pytest.raises(RegistryError, match=r"model@v0.0.3 already holds stage 'prod'"):
        rollback_target(st, "model", "prod", "v0.0.3")
    with pytest.raises(RegistryError, match=r"model@v0.0.9 is not registered"):
        rollback_target(st, "model", "prod", "v0.0.9")
    with pytest.raises(RegistryError, match="no version of model holds stage 'dev'"):
        rollback_target(st, "model", "dev", None)


def test_rollback_to_a_version_that_never_held_the_stage_is_refused():
    events = [
        *three_versions(),
        assigned("prod", 1, 200, "v0.0.2"),
        assigned("prod", 2, 201, "v0.0.3"),
    ]
    with pytest.raises(RegistryError, match=r"did not hold 'prod' before v0.0.3"):
        rollback_target(State(events), "model", "prod", "v0.0.1")


# -- retirement -------------------------------------------------------------------------------
def test_retire_and_deprecate():
    events = [*three_versions(), assigned("prod", 1, 200, "v0.0.1"), retired("v0.0.1", 201)]
    st = State(events)
    versions = st.versions("model")
    assert versions["v0.0.1"].retired is not None and versions["v0.0.1"].retired.tag.endswith("!")
    assert versions["v0.0.2"].retired is None
    assert versions["v0.0.1"].to_dict()["retired"] is True
    with pytest.raises(RegistryError, match=r"model#prod is held by retired model@v0.0.1"):
        resolve(st, "model", stage="prod")
    # an explicit version still resolves (show, get of an old version)
    assert resolve(st, "model", version="v0.0.1").version == "v0.0.1"
    # GTO's `model@deprecated` retires every version not retired before
    deprecate = Event(DEPRECATE, "model", "model@deprecated", "c", None, None, None, AUTHOR, 300,
                      "deprecate")  # fmt: skip
    versions = State([*events, deprecate]).versions("model")
    assert versions["v0.0.1"].retired.kind == DEREGISTER
    assert {v.retired.kind for k, v in versions.items() if k != "v0.0.1"} == {DEPRECATE}


def test_other_models_do_not_leak_into_a_model():
    events = [*three_versions(), registered("v5.0.0", 100, name="other")]
    events.append(assigned("prod", 1, 200, "v5.0.0", name="other"))
    st = State(events)
    assert st.names() == ["model", "other"]
    assert st.holder("model", "prod") is None
    assert list(st.versions("other")) == ["v5.0.0"]
    with pytest.raises(RegistryError, match=r"registered versions: v0.0.3, v0.0.2, v0.0.1"):
        need_version(st, "model", "v5.0.0")


# -- next version, references, names ------------------------------------------------------------
@pytest.mark.parametrize(
    ("bump", "first", "after"),
    [("patch", "v0.0.1", "v0.10.1"), ("minor", "v0.1.0", "v0.11.0"), ("major", "v1.0.0", "v1.0.0")],
)
def test_next_version(bump: str, first: str, after: str):
    assert next_version(State([]), "model", bump) == first
    events = [registered("v0.9.0", 100), registered("v0.10.0", 101), registered("v0.2.0", 102)]
    assert next_version(State(events), "model", bump) == after


def test_split_ref_and_checks():
    assert split_ref("model@v1.2.0") == ("model", "v1.2.0")
    assert split_ref("model", "v1.2.0") == ("model", "v1.2.0")
    assert split_ref("@v1.2.0") == (None, "v1.2.0")
    assert split_ref(None) == (None, None)
    with pytest.raises(UsageError, match="disagree"):
        split_ref("model@v1.2.0", "v1.3.0")
    with pytest.raises(RegistryError, match="not a semantic version"):
        split_ref("model@1.2.0")
    with pytest.raises(RegistryError, match="model name 'bad name' is not valid"):
        check_name("bad name")
    reg = RegistryParams()
    assert check_stage("prod", reg) == "prod"
    with pytest.raises(RegistryError, match="stage 'qa' is not one of dev, staging, prod"):
        check_stage("qa", reg)


# -- parsing `git for-each-ref` output ---------------------------------------------------------
def test_parse_tags_reads_annotated_registry_tags_only():
    def record(tag: str, objtype: str, when: str, message: str, target: str = "commit") -> str:
        return "\x00".join([tag, objtype, "abc123", target, "Ann", "ann@x.org", when, message])

    out = "\x1e\n".join(
        [
            record("model@v0.0.1", "tag", "100", "Register\n\n{}"),
            record("model#prod#1", "tag", "101", 'Promote\n\n{"version": "v0.0.1"}'),
            record("model@v0.0.2", "commit", "", "", ""),  # lightweight: not an event
            record("release-1", "tag", "102", "not ours"),  # not in GTO's grammar
            # hand-made on a tree or a file: checkout crashed (exit 70), a stage lost its holder
            record("model@v0.0.9", "tag", "103", "x", "tree"),
            record("model#prod#2000", "tag", "104", "x", "blob"),
        ]
    )
    events = parse_tags(out + "\x1e")
    assert [(e.kind, e.tag, e.version, e.stage, e.counter) for e in events] == [
        (REGISTER, "model@v0.0.1", "v0.0.1", None, None),
        (ASSIGN, "model#prod#1", None, "prod", 1),
    ]
    assert events[0].author == "Ann <ann@x.org>" and events[0].time == 100
    assert State(events).holder("model", "prod") == "v0.0.1"
