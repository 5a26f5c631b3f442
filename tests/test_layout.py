"""The package's layering: no import cycle between areas or between modules, areas meeting only
at public names, every function body within 65 lines, family facts in the registry."""

import ast
from pathlib import Path

import cnnkeras

PACKAGE = Path(cnnkeras.__file__).parent


def _area(module: str) -> str | None:
    """cnnkeras.evaluate._report -> evaluate; cnnkeras -> None (the root holds only a version)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cnnkeras" else None


def _modules() -> dict[str, Path]:
    """cnnkeras.train._run -> its file; a package by its name (cnnkeras.train)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "node_modules" not in path.parts:
            name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The cnnkeras modules ``module`` imports (inside functions too, relative ones resolved):
    ``from cnnkeras.train import _run`` is cnnkeras.train._run, ``from cnnkeras.train import
    train`` is cnnkeras.train."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found += [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
    return [name for name in found if name in modules and name != module]


def module_graph() -> dict[str, set[str]]:
    """Module -> the cnnkeras modules it imports."""
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def import_graph() -> dict[str, set[str]]:
    """Area -> the areas its modules import."""
    graph: dict[str, set[str]] = {}
    for module, targets in module_graph().items():
        source = _area(module)
        for target in targets:
            area = _area(target)
            if source is not None and area is not None and area != source:
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


def test_no_import_cycles_between_modules():
    """Not even inside an area: a module imports only what sits below it (timm's _registry ->
    _builder -> _factory), so each can be read, tested and moved on its own."""
    graph = module_graph()
    assert "cnnkeras.train._setup" in graph["cnnkeras.train._run"]  # the graph is read
    # a package's own __init__ gathers its modules; they never import it back
    inner = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert _cycle(inner) is None, " -> ".join(_cycle(inner))


def test_areas_meet_only_at_public_names():
    """``from cnnkeras.train._run import ...`` in another area reaches past the area's public
    names (its __init__): what other areas need is public, and one place says what it is."""
    reached = sorted(
        f"{module} imports {target}"
        for module, targets in module_graph().items()
        for target in targets
        if _area(target) not in (None, _area(module))
        and any(part.startswith("_") for part in target.split(".")[2:])
    )
    assert reached == []


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


def test_every_function_fits_in_a_reader_s_head():
    """No function body (its docstring aside) over 65 lines: a longer one is split where its
    steps are (STYLE.md; issue 28's bar is 80)."""
    longest = []
    for path in PACKAGE.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                if body:
                    lines = node.end_lineno - body[0].lineno + 1
                    longest.append(
                        (lines, f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
                    )
    longest.sort(reverse=True)
    assert longest[0][0] > 40  # the bodies are measured
    assert [name for lines, name in longest if lines > 65] == []
