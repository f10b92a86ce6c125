"""The decisions behind the housekeeping verbs, as tables: which outgoing mail an admin may
retry or cancel, where tickets go when their project changes workflow, and which statuses
a `ticket list --status` filter names."""

from __future__ import annotations

import pytest

from mailgate.cli.common import status_names
from mailgate.handlers import ServiceError
from mailgate.handlers.outgoing import why_not
from mailgate.handlers.project_workflow import plan_change, resolve_map
from routing.workflow_config import build_workflows

WF = build_workflows({})     # the presets: support, website, twolevel

# (verb, state, content still kept, fragment of the refusal or None: allowed)
OUTBOX_CASES = [
    ("retry", "failed", True, None),
    ("retry", "bounced", True, None),
    ("retry", "pending", True, None),
    ("retry", "bounced", False, "its content is no longer kept"),
    ("retry", "sent", True, "only failed, bounced or pending"),
    ("retry", "dropped", True, "only failed, bounced or pending"),
    ("retry", "cancelled", True, "only failed, bounced or pending"),
    ("retry", "sending", True, "being handed to the relay"),
    ("retry", None, True, "no such mail"),
    ("cancel", "pending", True, None),
    ("cancel", "failed", True, None),
    ("cancel", "dropped", True, None),
    ("cancel", "sent", True, "sent mail cannot be cancelled"),
    ("cancel", "bounced", True, "sent mail cannot be cancelled"),
    ("cancel", "sending", True, "being handed to the relay"),
    ("cancel", "cancelled", True, "cancelled"),
    ("cancel", None, True, "no such mail"),
]


@pytest.mark.parametrize(("verb", "state", "kept", "refusal"), OUTBOX_CASES)
def test_which_outgoing_mail_may_be_retried_or_cancelled(verb, state, kept, refusal):
    why = why_not(verb, state, kept)
    assert (why is None) == (refusal is None)
    if refusal:
        assert refusal in why


# (tickets by status, new workflow, mapping, expected moves, expected stranded)
PLAN_CASES = [
    ({"new": 2, "open": 1}, "twolevel", {}, {}, {"open": 1}),
    ({"new": 2, "open": 1}, "twolevel", {"open": "in-progress"}, {"open": "in-progress"}, {}),
    ({"new": 1}, "website", {}, {}, {"new": 1}),
    ({"new": 1}, "website", {"new": "backlog"}, {"new": "backlog"}, {}),
    ({"closed": 3}, "twolevel", {}, {}, {}),                     # both have it: stays
    ({"closed": 3}, "twolevel", {"closed": "closed"}, {}, {}),   # a map to itself: no move
    ({}, "website", {"new": "backlog"}, {}, {}),                  # no tickets: nothing to do
]


@pytest.mark.parametrize(("in_use", "new", "mapping", "moves", "stranded"), PLAN_CASES)
def test_what_a_workflow_change_does_to_tickets(in_use, new, mapping, moves, stranded):
    plan = plan_change(in_use, WF[new], mapping)
    assert (dict(plan.moves), dict(plan.stranded)) == (moves, stranded)


# (--map pairs, tickets by status, old, new, expected mapping or fragment of the refusal)
MAP_CASES = [
    ([("New", "Backlog")], {"new": 1}, "support", "website", {"new": "backlog"}),
    ([("waiting for customer", "todo")], {}, "support", "website", {"waiting": "to-do"}),
    ([("new", "bogus")], {"new": 1}, "support", "website", "has no status 'bogus'"),
    ([("bogus", "backlog")], {"new": 1}, "support", "website", "status 'bogus'"),
]


@pytest.mark.parametrize(("pairs", "in_use", "old", "new", "expected"), MAP_CASES)
def test_map_pairs_are_read_like_status_commands(pairs, in_use, old, new, expected):
    if isinstance(expected, dict):
        assert resolve_map(pairs, in_use, WF[old], WF[new]) == expected
    else:
        with pytest.raises(ServiceError, match=expected):
            resolve_map(pairs, in_use, WF[old], WF[new])


# (filter text, workflows in scope, statuses it names)
FILTER_CASES = [
    ("waiting", ["support", "website"], {"waiting"}),        # exact beats a prefix elsewhere
    ("Waiting for customer", ["support"], {"waiting"}),      # the label
    ("WAITING-INTERNAL", ["support"], {"waiting-internal"}),
    ("pending", ["support"], {"waiting"}),                   # an alias
    ("waiting-for", ["website"], {"waiting-for-data"}),      # a unique prefix
    ("wait", ["support"], set()),                            # an ambiguous prefix
    ("closed", ["support", "twolevel"], {"closed"}),
    ("live", ["support"], set()),
    ("", ["support"], set()),
]


@pytest.mark.parametrize(("text", "scope", "names"), FILTER_CASES)
def test_status_filters_accept_what_status_commands_accept(text, scope, names):
    assert status_names([WF[w] for w in scope], text) == names
