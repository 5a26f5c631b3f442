"""The package's layering: no two areas of cnnkeras import each other, directly or in a loop."""

import ast
from pathlib import Path

import cnnkeras

PACKAGE = Path(cnnkeras.__file__).parent


def _area(module: str) -> str | None:
    """cnnkeras.evaluate._report -> evaluate; cnnkeras -> None (the root holds only a version)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cnnkeras" else None


def import_graph() -> dict[str, set[str]]:
    """Area -> the areas its modules import, counting imports inside functions too."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        source = _area(module.removesuffix(".__init__"))
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
                if node.module == "cnnkeras":  # from cnnkeras import _io
                    targets = [f"cnnkeras.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                area = _area(target)
                if area is not None and area != source:
                    graph.setdefault(source, set()).add(area)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_import_cycles_between_areas():
    graph = import_graph()
    assert "saved" in graph["evaluate"] and "saved" in graph["export"]  # the graph is read
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    # low modules stay low: what opens a saved model knows nothing of what uses it
    for low in ("data", "models", "saved", "_litert", "_io", "errors"):
        assert not graph.get(low, set()) & {"train", "evaluate", "export", "tuning", "cli"}, low


def test_family_facts_live_in_the_registry():
    import re

    from cnnkeras.models import FAMILIES, list_models, model_info

    assert {model_info(n).family for n in list_models()} == set(FAMILIES)  # none stale
    switch = re.compile(r"family\s*(==|!=|\bin\b)")
    outside = [
        f"{path.relative_to(PACKAGE)}:{i}"
        for path in PACKAGE.rglob("*.py")
        if "models" not in path.relative_to(PACKAGE).parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if switch.search(line)
    ]
    assert outside == [], "read FamilyFacts instead of testing the family: " + ", ".join(outside)
    assert model_info("efficientnet_b0").facts.input_scale == 1.0  # it rescales inside
    assert model_info("vgg16").facts.head_pooling == "flatten"


def test_every_public_name_in_the_api_table_imports():
    import importlib
    import re

    text = (Path(__file__).parent.parent / "cnnkeras" / "README.md").read_text()
    section = text[text.index("## Python API") :]
    names = set(re.findall(r"`(cnnkeras(?:\.[a-z_]+)+\.[A-Za-z_]+)`", section))
    assert len(names) >= 25  # the table is read
    for dotted in sorted(names):
        module, name = dotted.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name), dotted
        assert not any(part.startswith("_") for part in dotted.split(".")), dotted
