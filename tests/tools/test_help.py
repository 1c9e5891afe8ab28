"""Every tool's ``--help`` against the code and the docs: it exits 0, its usage examples keep their shell
line continuations, and every ``--flag`` that README.md, docs/*.md or a tool's docstring gives a
``tools/<name>.py`` or ``queryinst <subcommand>`` command exists in that tool's parser (its usage line,
which argparse builds from the parser, not from the description)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from queryinst.__main__ import SUBCOMMANDS
from support.repo import REPO_ROOT, TOOLS_DIR, load_tool

TOOLS = sorted(p.stem for p in TOOLS_DIR.glob("*.py") if not p.stem.startswith("_"))  # not __init__
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMAND = re.compile(r"tools/(\w+)\.py|(?<![\w./-])queryinst ([a-z][a-z-]*)")


def _help(name: str, capsys, *prefix: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        load_tool(name).main([*prefix, "--help"])
    assert stop.value.code in (0, None), f"{name} {' '.join(prefix)} --help exited {stop.value.code}"
    return capsys.readouterr().out


def _usage(help_text: str) -> str:
    """The usage block at the top of a --help text (up to the first blank line)."""
    return help_text.split("\n\n", 1)[0]


def _flags(name: str, capsys) -> set[str]:
    """Every option of the tool, its subcommands' included."""
    usage = _usage(_help(name, capsys))
    flags = set(FLAG.findall(usage))
    commands = re.search(r"\{([\w,-]+)\}", usage)
    for sub in commands.group(1).split(",") if commands else []:
        flags |= set(FLAG.findall(_usage(_help(name, capsys, sub))))
    return flags


def _docstring_lines(path: Path) -> tuple[list[str], str]:
    """(the module docstring's source lines as written, its value)."""
    source = path.read_text()
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant), f"{path}: no module docstring"
    lines = source.splitlines()[node.lineno - 1:node.end_lineno]
    return lines, node.value.value


@pytest.mark.parametrize("name", TOOLS)
def test_help_exits_0_and_keeps_the_line_continuations(name, capsys):
    raw, doc = _docstring_lines(TOOLS_DIR / f"{name}.py")
    for line in raw:  # a lone backslash at the end of a docstring line joins it to the next: the example breaks
        assert not re.search(r"(?<!\\)\\$", line) or line.endswith("\\\\"), \
            f"tools/{name}.py: '{line.strip()}' loses its continuation (write \\\\ in the docstring)"
    text = _help(name, capsys)
    shown = [line.rstrip() for line in text.splitlines()]
    for line in doc.splitlines():
        if line.rstrip().endswith(" \\"):
            assert line.rstrip() in shown, f"tools/{name}.py --help lost the line '{line.strip()}'"


def _commands(text: str, markdown: bool) -> list[str]:
    """Shell commands: in Markdown, fenced blocks (continuations joined) and inline code spans; in a
    docstring, its lines (continuations joined)."""
    if not markdown:
        return text.replace("\\\n", " ").splitlines()
    found: list[str] = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        found += block.replace("\\\n", " ").splitlines()
    found += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return found


def _documented_flags() -> dict[tuple[str, str], set[str]]:
    """(source file, tool) -> the flags written after ``tools/<tool>.py`` (or ``queryinst <subcommand>``) in
    one command."""
    sources = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    texts = {p.relative_to(REPO_ROOT).as_posix(): p.read_text() for p in sources}
    for name in TOOLS:
        texts[f"tools/{name}.py"] = _docstring_lines(TOOLS_DIR / f"{name}.py")[1]
    found: dict[tuple[str, str], set[str]] = {}
    for source, text in texts.items():
        for command in _commands(text, markdown=source.endswith(".md")):
            for part in re.split(r"&&|;|\s\|\s", command):
                for match in COMMAND.finditer(part):
                    tool = match.group(1) or SUBCOMMANDS.get(match.group(2), ("",))[0]
                    if tool in TOOLS:
                        found.setdefault((source, tool), set()).update(FLAG.findall(part[match.end():]))
                        break
    return found


def test_every_documented_flag_exists(capsys):
    documented = _documented_flags()
    assert len({tool for _, tool in documented}) >= 10  # the scan finds the documented commands
    flags = {name: _flags(name, capsys) for name in sorted({tool for _, tool in documented})}
    missing = [f"{source}: tools/{tool}.py {flag}" for (source, tool), named in sorted(documented.items())
               for flag in sorted(named - flags[tool])]
    assert not missing, "documented options the tools do not have:\n" + "\n".join(missing)


def test_the_model_tools_take_threads(capsys):
    for name in ("track_video", "webcam", "submit_ytvis", "test", "demo_image", "train", "export_onnx",
                 "stream_memory", "benchmark"):
        assert "--threads" in _flags(name, capsys), name
