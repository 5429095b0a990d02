"""Shell completion scripts, written from the argparse parser itself.

`wan-tui completion bash|zsh|fish` prints one; reading the parser (rather than keeping a
script by hand) means a new option completes the day it is added. zsh uses the bash script
through its `bashcompinit` layer, which every zsh since 4.3 ships.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

PROG = "wan-tui"


@dataclass
class _Option:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str] = field(default_factory=list)


@dataclass
class _Command:
    name: str
    help: str
    options: list[_Option]
    positional_choices: list[str]  # e.g. the shell names of `completion`
    takes_file: bool  # a positional that is a path (batch FILE)


def _help(action: argparse.Action) -> str:
    text = action.help if action.help not in (None, argparse.SUPPRESS) else ""
    return " ".join(str(text).split())


def _options(parser: argparse.ArgumentParser) -> list[_Option]:
    out = []
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if not action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        out.append(_Option(names=list(action.option_strings), help=_help(action),
                           takes_value=action.nargs != 0,
                           choices=[str(c) for c in action.choices or ()]))
    return out


def _commands(parser: argparse.ArgumentParser) -> list[_Command]:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: _help(a) for a in subparsers._choices_actions}
    out = []
    for name, sub in subparsers.choices.items():
        positionals = [a for a in sub._actions if not a.option_strings]
        out.append(_Command(
            name=name, help=helps.get(name, ""), options=_options(sub),
            positional_choices=[str(c) for a in positionals for c in a.choices or ()],
            takes_file=any(a.type is not int and not a.choices and a.nargs is None
                           for a in positionals)))
    return out


def _sq(text: str) -> str:
    """Quoted for a POSIX shell."""
    return "'" + text.replace("'", "'\\''") + "'"


def bash(parser: argparse.ArgumentParser) -> str:
    commands = _commands(parser)
    top = [n for o in _options(parser) for n in o.names] + [c.name for c in commands]
    cases = []
    for cmd in commands:
        words = [n for o in cmd.options for n in o.names] + cmd.positional_choices
        value_cases = "".join(
            f"                {'|'.join(o.names)}) "
            f"COMPREPLY=($(compgen -W {_sq(' '.join(o.choices))} -- \"$cur\")); return;;\n"
            for o in cmd.options if o.choices)
        plain_values = "|".join(n for o in cmd.options if o.takes_value and not o.choices
                                for n in o.names)
        if plain_values:  # a free value (a path, a prompt): leave it to -o default
            value_cases += f"                {plain_values}) return;;\n"
        cases.append(f"        {cmd.name})\n"
                     f"            case \"$prev\" in\n{value_cases}            esac\n"
                     f"            opts={_sq(' '.join(words))};;\n")
    return f"""# {PROG} completion for bash. Load it with: eval "$({PROG} completion bash)"
_wan_tui() {{
    local cur prev cmd i opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break;;
        esac
    done
    case "$cmd" in
        "") opts={_sq(' '.join(top))};;
{''.join(cases)}    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -o default -F _wan_tui {PROG}
"""


def zsh(parser: argparse.ArgumentParser) -> str:
    return (f"# {PROG} completion for zsh. Load it (after compinit) with:\n"
            f'#   eval "$({PROG} completion zsh)"\n'
            "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser))


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(condition: str, option: _Option) -> str:
    parts = [f"complete -c {PROG} -n {_fish_quote(condition)}"]
    for name in option.names:
        parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
    if option.choices:
        parts.append(f"-xa {_fish_quote(' '.join(option.choices))}")
    elif option.takes_value:
        parts.append("-rF")
    if option.help:
        parts.append(f"-d {_fish_quote(option.help)}")
    return " ".join(parts)


def fish(parser: argparse.ArgumentParser) -> str:
    lines = [f"# {PROG} completion for fish. Load it with: {PROG} completion fish | source",
             f"complete -c {PROG} -f"]
    top = "__fish_use_subcommand"
    lines += [_fish_option(top, o) for o in _options(parser)]
    for cmd in _commands(parser):
        lines.append(f"complete -c {PROG} -n {top} -a {cmd.name} -d {_fish_quote(cmd.help)}")
        seen = f"__fish_seen_subcommand_from {cmd.name}"
        lines += [_fish_option(seen, o) for o in cmd.options if o.help]
        if cmd.positional_choices:
            lines.append(f"complete -c {PROG} -n {_fish_quote(seen)} "
                         f"-xa {_fish_quote(' '.join(cmd.positional_choices))}")
        if cmd.takes_file:
            lines.append(f"complete -c {PROG} -n {_fish_quote(seen)} -F")
    return "\n".join(lines) + "\n"


SHELLS = {"bash": bash, "zsh": zsh, "fish": fish}


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    return SHELLS[shell](parser)
