"""Kinds and outcomes are named once: no module of `shared/` writes a kind's or an outcome's string out,
it uses `Kind` (shared/domain/kinds.py) or `Outcome` / `SyncOutcome` / `EnrichmentOutcome` (shared/domain/outcomes.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.domain.kinds import FACTS, LISTED, TOP_LEVEL, WORKSPACE_FAMILIES, Kind, child_kind, parse_kind_name, top_level
from shared.domain.outcomes import EnrichmentOutcome, Outcome, SyncOutcome

SHARED = Path(__file__).resolve().parent.parent / "shared"
DEFINED_IN = {"domain/kinds.py", "domain/outcomes.py"}
# (module, string): where a word equal to a kind or outcome is something else, and why.
ALLOWED = {
    # An alert's data fields are named like the columns they come from ("Gateway" -> "gateway"): JSON field names.
    ("domain/flags.py", "gateway"), ("domain/flags.py", "backend"),
    # The rejected events' retention setting and what the purge reports are named "rejected", after the table.
    ("timers/retention.py", "rejected"), ("config.py", "rejected"),
    # The command's subcommand is called `rejected` (argparse's name for it, what people type).
    ("entrypoints/cli.py", "rejected"), ("entrypoints/usage_cli.py", "rejected"), ("entrypoints/audit_cli.py", "rejected"),
    # The alert outbox's partition of unsent alerts is a store key rule, not an enrichment outcome.
    ("store/keys.py", "pending"),
    # GET /api/alerts takes `pending=true` (a query parameter's name, what people type), as the command's --pending.
    ("entrypoints/http_expiry.py", "pending"),
    # `--workspace W` and the API's `workspace` parameter, and the `workspace` field of summary and access answers:
    # option, parameter and JSON field names (what people type and read), not the kind.
    ("entrypoints/access_cli.py", "workspace"), ("entrypoints/cli.py", "workspace"), ("entrypoints/http_api.py", "workspace"),
    ("queries/access.py", "workspace"), ("queries/summary.py", "workspace"), ("queries/unused.py", "workspace"),
    # An audit record's caller kind `user` (a person, beside servicePrincipal and managedIdentity): a JSON value of
    # the Activity Log's records, not the inventory kind.
    ("domain/audit.py", "user"),
    # The `workspace` field of the key-age answer, as in unused's.
    ("queries/keys.py", "workspace"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _enum_members(tree: ast.AST) -> set[int]:
    """The values of enum members defined in the module (another vocabulary's own definition, such as `Op`)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id.endswith("Enum") for b in node.bases):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                    found.add(id(statement.value))
    return found


def bare_words(words: set[str], root: Path = SHARED) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root).as_posix()
        if module in DEFINED_IN:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree) | _enum_members(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words
                    and id(node) not in skip and (module, node.value) not in ALLOWED):
                found.append(f"shared/{module}:{node.lineno}: {node.value!r}")
    return found


@pytest.mark.unit
def test_no_kind_is_written_out_outside_its_table() -> None:
    assert bare_words({k.value for k in Kind}) == []


@pytest.mark.unit
def test_no_outcome_is_written_out_outside_its_enum() -> None:
    assert bare_words({o.value for vocabulary in (Outcome, SyncOutcome, EnrichmentOutcome) for o in vocabulary}) == []


@pytest.mark.unit
def test_the_scan_finds_a_bare_word(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text('"""gatewayInstance"""\nKIND = "gatewayInstance"\n', encoding="utf-8")
    assert bare_words({"gatewayInstance"}, tmp_path) == ["shared/probe.py:2: 'gatewayInstance'"]


@pytest.mark.unit
def test_every_allowance_is_still_needed() -> None:
    """An allowance whose string is gone from its module would hide a new one."""
    for module, word in ALLOWED:
        tree = ast.parse((SHARED / module).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value == word for n in ast.walk(tree)), (module, word)


@pytest.mark.unit
def test_the_table_of_kinds() -> None:
    assert [k.value for k in TOP_LEVEL] == ["user", "api", "product", "subscription", "gateway", "backend", "workspace"]
    assert [k.value for k in WORKSPACE_FAMILIES] == ["api", "product", "subscription", "backend"]
    assert {k for k in Kind if k not in LISTED} == {Kind.GATEWAY_INSTANCE}
    for kind, facts in FACTS.items():
        assert facts.family in TOP_LEVEL and facts.family.family is facts.family
        assert facts.parent is None or facts.parent.family is facts.family
        assert parse_kind_name(kind.value.upper()) is kind
        if kind in TOP_LEVEL:
            assert top_level(facts.collection.upper()) is kind
        elif facts.parent is not None:
            assert child_kind(facts.family, facts.collection.lower()) is kind
        if facts.in_workspace is not None and kind in TOP_LEVEL:
            assert top_level(facts.in_workspace.upper(), in_workspace=True) is kind
        elif facts.in_workspace is not None and facts.parent is not None:
            assert child_kind(facts.family, facts.in_workspace.lower(), in_workspace=True) is kind
    assert top_level("users", in_workspace=True) is None and top_level("gateways", in_workspace=True) is None
    assert child_kind(Kind.PRODUCT, "apis", in_workspace=True) is None  # a workspace's product links its APIs
    assert parse_kind_name("gateways") is None and top_level("instances") is None
