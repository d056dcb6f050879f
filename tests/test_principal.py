"""What a principal may do: workspace scope patterns and a prompt's `requires` against its tags."""

from __future__ import annotations

from coflux_server.principal import SUPER, Principal


def test_workspace_scope_patterns():
    token = Principal(name="ci", kind="service", workspaces=("prod/*", "staging"))
    assert token.may_use("prod/eu") and token.may_use("staging")
    assert not token.may_use("prod") and not token.may_use("default")
    assert SUPER.may_use("anything")


def test_requires_matched_against_tags():
    alice = Principal(name="alice", kind="service", tags={"team": ("ml",), "role": ("lead", "dev")})
    assert alice.satisfies(None) and alice.satisfies({})
    assert alice.satisfies({"team": "ml"}) and alice.satisfies({"role": ["admin", "lead"]})
    assert alice.satisfies({"team": True})
    assert not alice.satisfies({"team": "ops"}) and not alice.satisfies({"region": True})
    assert SUPER.satisfies({"team": "ops"})
