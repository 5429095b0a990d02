"""The shape of the package: no import cycle anywhere in tui/ (type-only imports included:
a part that reaches back for the whole is still tied to it)."""

from __future__ import annotations

import grimp

# None is excused: the engine's parts depend on tui/engine/parts.py (a protocol), not on
# engine.py, and tui/store/opening.py, not the Store base class, chooses a backend.


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_cycles_finds_a_cycle_and_only_the_cycle():
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_in_the_package():
    graph = grimp.build_graph("tui", include_external_packages=False)
    assert cycles(graph) == [], "import cycles (break them with a protocol, or move what both need)"


LONG = 800  # lines: past this a module needs to say why it is one module


def test_no_module_over_800_lines_without_a_reason_in_its_docstring():
    """A reader opening a long module should find, first thing, why it is not split: a
    paragraph of its docstring starting with `Size:`."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "tui"
    unexplained = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LONG:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(p.startswith("Size:") for p in doc.split("\n\n")):
            unexplained.append(f"{path.relative_to(package.parent)} ({text.count(chr(10))})")
    assert unexplained == [], "split these, or say why not in a 'Size:' paragraph"
