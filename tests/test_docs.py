"""The documentation cannot drift from the code: the reference pages are what the generator
writes now, every environment variable and config key the code reads is described, and every
relative link in README.md and docs/ leads somewhere."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tui import config, docs_gen

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tui"
UPDATE = f"run `{docs_gen.COMMAND}` to update them"
# Our own namespace: any string that looks like one of these is an environment variable.
OURS = re.compile(r"^(WAN_TUI|VENICE|APIXO|ACEDATA)_[A-Z0-9_]+$")
# Benchmarks set variables for the processes they start; they read none of their own.
NOT_READ_HERE = ("bench",)


def _sources() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if p.relative_to(PACKAGE).parts[0] not in NOT_READ_HERE]


REGISTRIES = {"ENVIRONMENT", "TERMINAL_ENVIRONMENT", "CONFIG_KEYS"}


def _walk(path: Path):
    """Every node of a module except the registries' own text (a name listed there is not a
    name read)."""
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.AnnAssign | ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in REGISTRIES
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _env_receiver(node: ast.expr) -> bool:
    """`os.environ`, `env`, `self._env`: something that holds the environment."""
    text = ast.unparse(node)
    return "environ" in text or re.search(r"(^|\.)_?env$", text) is not None


def environment_reads() -> dict[str, str]:
    """Every variable the code reads (name → first file:line): literal names read from the
    environment, and every string in our namespace (KEY_ENV's values, say)."""
    found: dict[str, str] = {}
    for path in _sources():
        for node in _walk(path):
            name = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value if OURS.match(node.value) else None
            elif isinstance(node, ast.Call) and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                func = node.func
                if (isinstance(func, ast.Attribute) and func.attr == "get"
                        and _env_receiver(func.value)) or ast.unparse(func) == "os.getenv":
                    name = node.args[0].value
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and _env_receiver(node.value):
                name = str(node.slice.value)
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) \
                    and isinstance(node.ops[0], ast.In) and _env_receiver(node.comparators[0]):
                name = str(node.left.value)
            if name:
                found.setdefault(name, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def all_strings(paths: list[Path] | None = None) -> set[str]:
    return {node.value for path in (paths or _sources()) for node in _walk(path)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_reference_pages_are_what_the_code_makes_now():
    for name, text in docs_gen.pages().items():
        path = docs_gen.REFERENCE / name
        assert path.exists(), f"docs/reference/{name} is missing: {UPDATE}"
        assert path.read_text(encoding="utf-8") == text, \
            f"docs/reference/{name} no longer matches the code: {UPDATE}"


def test_every_environment_variable_read_is_described_and_none_described_is_unread():
    described = {name for name, _ in (*config.ENVIRONMENT, *config.TERMINAL_ENVIRONMENT)}
    read = environment_reads()
    undescribed = [f"{name} ({where})" for name, where in sorted(read.items())
                   if name not in described]
    assert undescribed == [], (
        f"read but not described in tui/config.py ENVIRONMENT (or TERMINAL_ENVIRONMENT): "
        f"{', '.join(undescribed)}; describe them there, then {UPDATE}")
    strings = all_strings()
    unread = sorted(name for name in described if name not in strings)
    assert unread == [], f"described in tui/config.py but read nowhere: {unread}"


def _config_reads() -> set[str]:
    """The literal keys load_config takes from the parsed TOML (not from the environment)."""
    tree = ast.parse((PACKAGE / "config.py").read_text(encoding="utf-8"))
    load = next(n for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef) and n.name == "load_config")
    keys = set()
    for node in ast.walk(load):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args \
                and isinstance(node.args[0], ast.Constant) and not _env_receiver(node.func.value):
            keys.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str) and not _env_receiver(node.value):
            keys.add(node.slice.value)
    return keys


def _described_key(shown: str) -> set[str]:
    """`[providers.NAME] api_key` describes `providers` and `api_key`; `[keys] ID` the table
    `keys` (ID is a placeholder); `theme` itself."""
    table = re.match(r"\[([a-z_]+)", shown)
    last = shown.split()[-1]
    return ({table.group(1)} if table else set()) | ({last} if not last.isupper() else set())


def test_every_config_key_read_is_described_and_none_described_is_unread():
    described = set().union(*(_described_key(k) for k, _ in config.CONFIG_KEYS))
    read = _config_reads()
    assert sorted(read - described) == [], (
        "config.toml keys load_config reads but tui/config.py CONFIG_KEYS does not describe; "
        f"describe them, then {UPDATE}")
    assert sorted(described - read) == [], "described in CONFIG_KEYS but not read"


def test_the_template_and_the_reference_name_every_top_level_key():
    page = (docs_gen.REFERENCE / "environment.md").read_text(encoding="utf-8")
    for key, _ in config.CONFIG_KEYS:
        assert f"`{key}`" in page
        if not key.startswith("["):
            assert key in config.CONFIG_TEMPLATE, f"{key} is missing from CONFIG_TEMPLATE"


def test_the_help_lists_every_environment_variable():
    help_text = subprocess.run([sys.executable, "-m", "tui", "--help"], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    for name, _ in config.ENVIRONMENT:
        assert name in help_text


def test_every_link_in_the_readme_and_docs_leads_somewhere():
    assert docs_gen.broken_links() == []


def test_the_link_check_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#the-b_c-part--done) [gone](docs/nope.md) [bad anchor](docs/a.md#nowhere)"
        "\n`[in code](docs/nope2.md)` [site](https://example.org/x) [self](#wan)\n# wan\n")
    (tmp_path / "docs" / "a.md").write_text(
        "# A\n## The `b_c` part — done\n```\n[fenced](missing.md)\n```\n[up](../README.md)\n")
    assert docs_gen.broken_links(tmp_path) == [
        "README.md: (docs/nope.md) leads to no file",
        "README.md: (docs/a.md#nowhere): no heading #nowhere in docs/a.md",
    ]


def test_slugs_follow_githubs_rules():
    assert docs_gen.slug("Bandwidth over SSH — `python -m tui.bench.ssh_bytes [--zoom]`") == \
        "bandwidth-over-ssh--python--m-tuibenchssh_bytes---zoom"
    assert docs_gen.slug("The `b_c` part — done") == "the-b_c-part--done"
    assert docs_gen.anchors("# X\n# X\n```\n# not\n```\n") == {"x", "x-1"}


def test_check_mode_names_a_stale_page(tmp_path, monkeypatch, capsys):
    for name, text in docs_gen.pages().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "keys.md").write_text("old\n", encoding="utf-8")
    assert docs_gen.stale(tmp_path) == ["keys.md"]
    monkeypatch.setattr(docs_gen, "REFERENCE", tmp_path)
    assert docs_gen.main(["--check"]) == 1
    assert f"docs/reference/keys.md is out of date: run `{docs_gen.COMMAND}`" in \
        capsys.readouterr().err


def _hand_written_pages() -> dict[str, str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in pages
            if docs_gen.REFERENCE not in p.parents}


def test_the_written_pages_name_only_commands_options_and_variables_that_exist():
    """What the generated pages cannot cover: prose. A command named in code (`wan-tui X`), an
    option (`--x`) or one of our environment variables must still exist in the code."""
    import argparse

    from tui.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    strings = all_strings(sorted(PACKAGE.rglob("*.py")))  # the benchmarks' options too
    described = {name for name, _ in config.ENVIRONMENT}
    wrong = []
    for page, text in _hand_written_pages().items():
        shell = re.findall(r"^```(?:sh|bash|console)\n(.*?)^```", text, re.S | re.M)
        spans = re.findall(r"`+([^`\n]+)`+", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
        code = "\n".join([*shell, *spans])
        for command in re.findall(r"\bwan-tui ([a-z][a-z-]*)", code):
            if command not in sub.choices:
                wrong.append(f"{page}: wan-tui {command} is no command")
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
            if option not in strings and option != "--help":  # argparse's own
                wrong.append(f"{page}: {option} is an option of nothing in tui/")
        for name in re.findall(r"\b(?:WAN_TUI|VENICE|APIXO|ACEDATA)_[A-Z0-9_]+\b", text):
            if name not in described:
                wrong.append(f"{page}: {name} is not read (tui/config.py ENVIRONMENT)")
    assert wrong == []


# The packages whose modules the contributor's map names one by one (screens, widgets, the
# simulator and the benchmarks are named as folders).
MAPPED = ("", "app", "engine", "providers", "media", "store")


def test_the_contributors_map_names_every_module():
    text = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    mapped = text[text.index("## Where things are"):]
    missing = []
    for package in MAPPED:
        folder = PACKAGE / package
        names = [p.name for p in folder.iterdir()
                 if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
                 or (p.is_dir() and (p / "__init__.py").exists() and not package)]
        for name in sorted(names):
            shown = f"{name}/" if (folder / name).is_dir() else name
            if not re.search(rf"(?<![\w/]){re.escape(shown)}", mapped) \
                    and f"tui/{package + '/' if package else ''}{shown}" not in mapped:
                missing.append(f"tui/{package + '/' if package else ''}{shown}")
    assert missing == [], "add them to docs/contributing.md, 'Where things are'"


def test_every_page_is_reachable_from_the_index_and_the_readme_links_the_index():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#]+)", index))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert sorted(pages - linked) == [], "link each docs/ page from docs/index.md"
    assert "reference/index.md" in linked
    assert "](docs/index.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
