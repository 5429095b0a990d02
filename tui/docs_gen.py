"""The reference pages under docs/reference/, written from the code they describe.

`python -m tui.docs_gen` rewrites them; `--check` only says which are out of date.
tests/test_docs.py regenerates them and fails when a page differs from what is on disk, so a
key, a command-line option or an environment variable added to the code without a run of this
script shows up as a failing test, not as a page that quietly stopped being true.

The sources: the dashboard's bindings (and every screen's in tui/app), `?`'s list of status
figures, the argparse parsers of `wan-tui` and `wan-tui sim`, and tui/config.py's lists of
environment variables and config keys (a test holds those to what the code reads).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
COMMAND = "python -m tui.docs_gen"
HEADER = (f"<!-- Written by `{COMMAND}` from the code; edit the code, not this page. -->\n\n")


def _cell(text: str) -> str:
    """Text for one cell of a Markdown table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(rows_cell for rows_cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- keys


def _key_display(keys: str) -> str:
    """`plus,equals_sign` → `+` `=`: as the help screen shows them, ctrl spelled out."""
    from textual.keys import format_key

    shown = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        name = {"enter": "enter"}.get(name) or format_key(name)
        shown.append(_code("+".join([*modifiers, name])))
    return " ".join(shown)


def _binding_classes() -> Iterator[tuple[str, Any]]:
    """Every class in tui.app that declares its own BINDINGS, module by module."""
    import tui.app

    for info in sorted(pkgutil.walk_packages(tui.app.__path__, "tui.app."), key=lambda i: i.name):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "BINDINGS" in vars(cls):
                yield module.__name__, cls


def keys_page() -> str:
    from tui.app.app import WanApp
    from tui.app.commands import HELP
    from tui.app.screens.help import STATUS_FIGURES

    dashboard = WanApp.dashboard_bindings()
    out = [HEADER, "# Keys\n\n",
           "Every key the dashboard answers to, by screen. A binding's id is what the config "
           "file's `[keys]` table remaps (`quote = \"ctrl+e\"`; see "
           "[configuration](environment.md)); `?` in the dashboard shows the same list with "
           "your remapping, and `ctrl+p` finds every dashboard action by name.\n\n",
           "## The dashboard\n\n"]
    out.append(_table(("key", "what it does", "id"), (
        (_key_display(b.key), _cell(HELP.get(b.id or "", b.description)), _code(b.id or ""))
        for b in dashboard)))
    seen = {id(b) for b in dashboard}
    classes = [(m, c) for m, c in _binding_classes()
               if c is not WanApp and any(id(b) not in seen for b in c.BINDINGS)]
    for module, cls in classes:
        bindings = [b for b in cls.BINDINGS if id(b) not in seen]
        # The module's docstring says what the screen is for; a module with two such classes
        # needs each class's own (not one inherited from Textual).
        own = cls.__dict__.get("__doc__")
        shared = sum(m == module for m, _ in classes) > 1
        doc = ((own if shared and own else inspect.getdoc(sys.modules[module])) or "")
        doc = inspect.cleandoc(doc).split("\n\n")[0]
        out.append(f"\n## {cls.__name__} ({_code(module)})\n\n")
        if doc:
            out.append(" ".join(doc.split()) + "\n\n")
        out.append(_table(("key", "what it does", "id"), (
            (_key_display(b.key), _cell(b.description), _code(b.id or "")) for b in bindings)))
    out.append("\n## The status line\n\n"
               "What each figure of the status line means, in its order there (`?` shows "
               "this too).\n\n")
    out.append(_table(("figure", "meaning"),
                      ((_code(figure), _cell(meaning)) for figure, meaning in STATUS_FIGURES)))
    return "".join(out)


# ---------------------------------------------------------------- command line


def _usage(parser: argparse.ArgumentParser) -> str:
    # A fixed width, so the page does not depend on the terminal that wrote it.
    formatter = argparse.HelpFormatter(parser.prog, width=100)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _argument(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            names += f" {metavar}"
        return _code(names)
    return _code(str(action.metavar or action.dest))


def _meaning(action: argparse.Action) -> str:
    text = action.help or ""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        text += f" (one of: {', '.join(map(str, action.choices))})"
    default = action.default
    if (action.option_strings and action.nargs != 0 and default not in (None, argparse.SUPPRESS)
            and "default" not in text):
        text += f" (default {default})"
    return _cell(text)


def _arguments(parser: argparse.ArgumentParser) -> str:
    rows = [(_argument(a), _meaning(a)) for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction |
                                                             argparse._SubParsersAction)]
    return _table(("argument", "meaning"), rows) if rows else ""


def cli_page() -> str:
    from tui.cliparser import build_parser
    from tui.sim.server import build_parser as sim_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = [HEADER, "# Command line\n\n", " ".join((parser.description or "").split()),
           " Every command takes `--debug` (the log file gets everything) and `-h` / `--help`."
           " Exit status: 0 done, 1 a job or provider failed, 2 bad input or configuration; "
           "every error is one line on standard error. How the commands fit together: the "
           "[user guide](../guide.md#command-line).\n\n",
           "```\n", _usage(parser), "\n```\n\n", _arguments(parser), "\n",
           "| command | what it does |\n|---|---|\n"]
    out += [f"| [{_code(name)}](#wan-tui-{name}) | {_cell(helps.get(name) or '')} |\n"
            for name in sub.choices]
    for name, command in sub.choices.items():
        if name == "sim":
            command = sim_parser()
        what = _cell(helps.get(name) or "")
        out += [f"\n## wan-tui {name}\n\n", what[:1].upper() + what[1:], ".\n\n",
                "```\n", _usage(command), "\n```\n\n", _arguments(command)]
    return "".join(out)


# ---------------------------------------------------------------- environment and config


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return _code(str(value).lower())
    return _code(repr(value) if isinstance(value, str) else str(value))


def environment_page() -> str:
    from tui.config import CONFIG_KEYS, CONFIG_TEMPLATE, ENVIRONMENT, TERMINAL_ENVIRONMENT, Config

    defaults = {f.name: f.default for f in dataclasses.fields(Config)
                if f.default is not dataclasses.MISSING and f.default is not None}
    out = [HEADER, "# Environment variables and configuration\n\n",
           "An environment variable wins over the config file. API keys come from either, "
           "never from a command-line flag (`ps` would show it), and never reach the history, "
           "the logs or a screenshot.\n\n## Environment variables\n\n",
           _table(("variable", "what it does"),
                  ((_code(name), _cell(meaning)) for name, meaning in ENVIRONMENT)),
           "\n### Read from the terminal's environment\n\n",
           "Not set for wan-tui; what they change when the terminal sets them.\n\n",
           _table(("variable", "what it changes"),
                  ((_code(name), _cell(meaning)) for name, meaning in TERMINAL_ENVIRONMENT)),
           "\n## The config file\n\n",
           "`config.toml` in the platform's config folder (`~/.config/wan-tui` on Linux), or in "
           "`WAN_TUI_HOME`. `wan-tui config` prints its path and the history's, the videos' "
           "and the log file's.\n\n",
           _table(("key", "default", "what it does"),
                  ((_code(key), _toml(defaults[key]) if key in defaults else "",
                    _cell(meaning)) for key, meaning in CONFIG_KEYS)),
           "\n`wan-tui config` creates this commented template (mode 0600) when there is "
           "none:\n\n```toml\n", CONFIG_TEMPLATE, "```\n"]
    return "".join(out)


# ---------------------------------------------------------------- the pages


def pages() -> dict[str, str]:
    return {"keys.md": keys_page(), "cli.md": cli_page(), "environment.md": environment_page(),
            "index.md": index_page()}


def index_page() -> str:
    return (HEADER + "# Reference\n\nWritten from the code by `" + COMMAND + "`; a test fails "
            "when a page here no longer matches it.\n\n"
            "- [Keys](keys.md): every screen's keys and their ids, the status line's figures\n"
            "- [Command line](cli.md): every command and option of `wan-tui` and `wan-tui sim`\n"
            "- [Environment variables and configuration](environment.md): what wan-tui reads "
            "from the environment and from `config.toml`\n")


def stale(directory: Path | None = None) -> list[str]:
    """Names of the pages whose text on disk differs from what the code makes now."""
    directory = REFERENCE if directory is None else directory
    out = []
    for name, text in pages().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


# ---------------------------------------------------------------- links

ROOT = REFERENCE.parent.parent
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation gone (`_` and `-` stay), spaces
    to hyphens. Inline code keeps its text; a link keeps its words."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", markdown).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    out.update(re.findall(r'<a\s+(?:name|id)="([^"]+)"', markdown))
    return out


def broken_links(root: Path = ROOT) -> list[str]:
    """Relative links (and their #anchors) in README.md and docs/**/*.md that lead nowhere.
    Links to other sites are not followed: nothing here reaches the internet."""
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        body = _INLINE_CODE.sub("", _FENCE.sub("", text))
        for target in _LINK.findall(body):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}: ({target})"
            if not dest.exists():
                problems.append(f"{where} leads to no file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(
                    dest.read_text(encoding="utf-8")):
                problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming the pages that are out of date "
                             "and the links in README.md and docs/ that lead nowhere")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"docs/reference/{name} is out of date: run `{COMMAND}`", file=sys.stderr)
        links = broken_links()
        for problem in links:
            print(problem, file=sys.stderr)
        return 1 if out_of_date or links else 0
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (REFERENCE / name).write_text(text, encoding="utf-8")
        print(f"wrote docs/reference/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
