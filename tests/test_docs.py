"""The docs say what the code does, as sqlite-utils' and datasette's test_docs check theirs.

Every MEDCELL_* variable the code reads is in a settings table of docs/ with its default, and no
name is documented that nothing reads; every command and option of the `medcell` CLI is in the
operator's manual, and every `medcell …` command the docs show exists with the options shown;
links between README and docs/ lead to files and headings that exist, and so do the documents the
code cites.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MANUAL = DOCS / "operating.md"
CLI_SECTION = "## The `medcell` CLI"

# Not code: the docs themselves, the tests (they set variables, they do not read them), and what
# tools and builds leave in a checkout.
SKIPPED_DIRS = {
    "docs",
    "tests",
    "__pycache__",
    "node_modules",
    "test-artifacts",
    "build",
    "results",
}
SETTING = re.compile(r"(?<![A-Za-z0-9_])MEDCELL_[A-Z0-9_]*[A-Z0-9]")
# Defaults the code spells out as a literal next to the variable's name.
LITERAL_DEFAULTS = [
    re.compile(r'get\(\s*"(MEDCELL_\w+)"\s*,\s*"([^"]+)"'),
    re.compile(r'get\(\s*"(MEDCELL_\w+)"\s*,\s*(\d+(?:\.\d+)?)\s*\)'),
    re.compile(r'get\(\s*"(MEDCELL_\w+)"\s*\)\s*or\s*"([^"]+)"'),
    re.compile(r'get\(\s*"(MEDCELL_\w+)"\s*\)\s*or\s*(\d+(?:\.\d+)?)\b'),
    re.compile(r"\$\{(MEDCELL_\w+):-([^}]+)\}"),
    re.compile(r"^ARG (MEDCELL_\w+)=(\S+)", re.MULTILINE),
]


# -- the code's side ----------------------------------------------------------------------------


def code_files(root: Path):
    """Every text file of the code: Python, shell, Makefile, Dockerfiles, templates, .ci/."""
    for path in sorted(root.iterdir()):
        if path.is_dir():
            hidden = path.name.startswith(".") and path.name != ".ci"
            if not (hidden or path.name in SKIPPED_DIRS or path.name.endswith(".egg-info")):
                yield from code_files(path)
        elif path.suffix != ".md" and path.stat().st_size < 2_000_000:
            data = path.read_bytes()
            if b"\0" not in data:
                yield path, data.decode("utf-8", errors="replace")


def settings_in_code(root: Path) -> dict[str, set[str]]:
    """Every MEDCELL_* name the code reads or names, with the literal defaults it gives them."""
    found: dict[str, set[str]] = {}
    for _, text in code_files(root):
        for name in SETTING.findall(text):
            found.setdefault(name, set())
        for pattern in LITERAL_DEFAULTS:
            for name, default in pattern.findall(text):
                found.setdefault(name, set()).add(default.strip())
    return found


def medcell_cli(root: Path = ROOT) -> click.Group:
    """The click group behind pyproject's `medcell` console script, wherever it lives now."""
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    module_name, _, attribute = scripts["medcell"].partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute) if attribute else None
    if isinstance(target, click.Group):
        return target
    # The script is a function that calls the group: find the one group no other group holds,
    # first in the script's module, then anywhere in its package.
    roots = _root_groups(vars(module).values())
    if len(roots) != 1:
        package = importlib.import_module(module_name.split(".")[0])
        values = []
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                values += vars(importlib.import_module(info.name)).values()
        roots = _root_groups(values)
    assert len(roots) == 1, f"cannot tell the `medcell` group from {scripts['medcell']}: {roots}"
    return roots[0]


def _root_groups(values) -> list[click.Group]:
    groups = {id(v): v for v in values if isinstance(v, click.Group)}
    held = {id(sub) for group in groups.values() for sub in group.commands.values()}
    return [group for key, group in groups.items() if key not in held]


@dataclass
class Command:
    path: tuple[str, ...]
    options: dict[str, bool]  # long option -> takes a value
    arguments: int
    subcommands: dict[str, click.Command] = field(default_factory=dict)


def commands(group: click.Group, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Command]:
    """Every command and group of the CLI by its path, with its long options and argument count."""
    found = {}
    for name, command in group.commands.items():
        here = (*path, name)
        options = {
            opt: not param.is_flag
            for param in command.params
            if isinstance(param, click.Option)
            for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("--")
        }
        arguments = sum(isinstance(param, click.Argument) for param in command.params)
        subcommands = dict(command.commands) if isinstance(command, click.Group) else {}
        found[here] = Command(here, options, arguments, subcommands)
        if isinstance(command, click.Group):
            found.update(commands(command, here))
    return found


# -- the docs' side -----------------------------------------------------------------------------


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def settings_tables(texts: list[str]) -> dict[str, list[str]]:
    """Rows of every `| variable | default | meaning |` table: each name with its default cells."""
    rows: dict[str, list[str]] = {}
    for text in texts:
        in_table = False
        for line in text.splitlines():
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if line.startswith("|") and cells[:2] == ["variable", "default"]:
                in_table = True
            elif not line.startswith("|"):
                in_table = False
            elif in_table and len(cells) >= 3 and not set(cells[0]) <= {"-", ":"}:
                for name in SETTING.findall(cells[0]):
                    rows.setdefault(name, []).append(cells[1])
    return rows


def shown_commands(text: str) -> list[tuple[str, bool]]:
    """`medcell …` as the text shows it: in backticks, or as a line of a code example.

    Each comes with whether it is the first cell of a table row (where its arguments are named).
    A fenced block marked `text` is a program's output, not commands.
    """
    command_line = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?(medcell\s[^`#]*?)\s*(?:#.*)?$")
    shown, prose, fence = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence is not None:
            match = command_line.match(line)
            if match and fence != "text":
                shown.append((match.group(1), False))
        elif line.startswith("    ") and command_line.match(line):
            shown.append((command_line.match(line).group(1), False))
        elif line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            for span in re.findall(r"`([^`]+)`", cells[0]):
                if re.match(r"(?:\.venv/bin/)?medcell\s+[a-z]", span):
                    shown.append((span.replace("\\|", "|"), True))
            prose.append("|".join(cells[1:]))
        else:
            prose.append(line)
    for span in re.findall(r"`([^`]+)`", "\n".join(prose)):
        span = " ".join(span.split())
        if re.match(r"(?:\.venv/bin/)?medcell\s+[a-z]", span):
            shown.append((span.replace("\\|", "|"), False))
    return shown


def resolve(span: str, tree: dict[tuple[str, ...], Command]) -> tuple[list[tuple], list[str]]:
    """The command paths a shown `medcell …` names (`sleep|wake` names two), and its problems."""
    words = re.sub(r"[\[\]()]", " ", span).split()
    if words[0].endswith("medcell"):
        words = words[1:]
    paths: list[tuple[str, ...]] = [()]
    problems = []
    for word in words:
        if not re.fullmatch(r"[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*", word):
            break
        here = tree.get(paths[0]) if paths[0] else None
        names = here.subcommands if here else {p[0]: None for p in tree if len(p) == 1}
        if paths[0] and not (here and here.subcommands):
            break  # a command's argument, not a subcommand
        alternatives = word.split("|")
        unknown = [a for a in alternatives if a not in names]
        if unknown:
            problems.append(f"`{span}`: no command `medcell {' '.join(paths[0] + (unknown[0],))}`")
            return [], problems
        paths = [(*path, a) for path in paths for a in alternatives]
    if paths == [()]:
        return [], problems
    for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span):
        for path in paths:
            if option != "--help" and option not in tree[path].options:
                problems.append(f"`{span}`: `medcell {' '.join(path)}` has no option {option}")
    return paths, problems


def positional(span: str, command: Command) -> int:
    """How many of the command's arguments a table row names (`SLUG`, `[DIR]`)."""
    tokens = re.sub(r"[\[\]()|]", " ", span).split()
    count, skip = 0, False
    for token in tokens:
        if skip:
            skip = False
        elif token.startswith("--"):
            skip = command.options.get(token, False)
        elif re.fullmatch(r"[A-Z][A-Z_]*", token):
            count += 1
    return count


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading and not fenced:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return result


# -- the checks, each returning what is wrong ---------------------------------------------------


def undocumented_settings(code: dict[str, set[str]], rows: dict[str, list[str]]) -> list[str]:
    problems = []
    for name, defaults in sorted(code.items()):
        cells = rows.get(name)
        if not cells:
            problems.append(
                f"{name} is read by the code but has no row in a settings table of docs/"
            )
            continue
        if not any(cells):
            problems.append(f"{name}: its row in docs/ gives no default")
        for default in sorted(defaults):
            accepted = {default, default.removesuffix(".0")}
            if not any(_names(cell, accepted) for cell in cells):
                problems.append(f"{name}: the code's default {default!r} is in none of its rows")
    return problems


def _names(cell: str, values: set[str]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(v)}(?![\w.])", cell) for v in values)


def commands_missing_from(manual: str, tree: dict[tuple[str, ...], Command]) -> list[str]:
    documented: dict[tuple[str, ...], set[str]] = {}
    problems = []
    for span, in_table in shown_commands(manual):
        paths, wrong = resolve(span, tree)
        problems += wrong
        for path in paths:
            documented.setdefault(path, set()).update(re.findall(r"--[a-z][a-z0-9-]*", span))
            if in_table and not tree[path].subcommands:
                named = positional(span, tree[path])
                if named != tree[path].arguments:
                    problems.append(
                        f"`{span}`: names {named} arguments, "
                        f"`medcell {' '.join(path)}` takes {tree[path].arguments}"
                    )
    problems = list(dict.fromkeys(problems))
    for path, command in sorted(tree.items()):
        if command.subcommands:
            continue
        if path not in documented:
            problems.append(f"`medcell {' '.join(path)}` is not in the manual's CLI section")
            continue
        for option in sorted(set(command.options) - documented[path] - {"--json"}):
            problems.append(
                f"`medcell {' '.join(path)} {option}` is not in the manual's CLI section"
            )
    return problems


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_tree() -> dict[tuple[str, ...], Command]:
    return commands(medcell_cli())


def test_every_setting_the_code_reads_is_documented_with_its_default():
    rows = settings_tables([p.read_text() for p in DOCS.glob("*.md")])
    assert undocumented_settings(settings_in_code(ROOT), rows) == []


def test_no_setting_is_documented_that_nothing_reads():
    code = settings_in_code(ROOT)
    documented = {name for p in doc_files() for name in SETTING.findall(p.read_text())}
    assert sorted(documented - set(code)) == []


def test_every_command_and_option_is_in_the_operators_manual(cli_tree):
    manual = section(MANUAL.read_text(), CLI_SECTION)
    assert commands_missing_from(manual, cli_tree) == []


def test_every_command_takes_json_as_the_manual_says(cli_tree):
    assert "Every command takes `--json`" in section(MANUAL.read_text(), CLI_SECTION)
    leaves = [path for path, command in cli_tree.items() if not command.subcommands]
    assert [path for path in leaves if "--json" not in cli_tree[path].options] == []


def test_every_command_the_docs_show_exists_with_the_options_shown(cli_tree):
    problems = []
    for path in doc_files():
        for span, _ in shown_commands(path.read_text()):
            problems += [f"{path.name}: {p}" for p in resolve(span, cli_tree)[1]]
    assert problems == []


def test_links_between_readme_and_docs_lead_to_files_and_headings_that_exist():
    problems = []
    for source in doc_files():
        text = re.sub(r"`[^`\n]*`", "", source.read_text())  # a regular expression is no link
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (source.parent / file).resolve() if file else source
            if not path.exists():
                problems.append(f"{source.name}: {target} (no such file)")
            elif anchor and anchor not in anchors(path.read_text()):
                problems.append(f"{source.name}: {target} (no such heading)")
    assert problems == []


def test_every_document_the_code_cites_exists():
    documents = {p.relative_to(ROOT).as_posix() for p in doc_files()}
    names = {Path(d).name for d in documents}
    files = [*code_files(ROOT), *((p, p.read_text()) for p in (ROOT / "tests").rglob("*.py"))]
    cited = {
        f"{path.relative_to(ROOT)}: {ref}"
        for path, text in files
        for ref in re.findall(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md)\b", text)
        if ref not in documents and not ("/" not in ref and ref in names)
    }
    assert sorted(cited) == []


def test_readme_leads_to_the_cli_table():
    assert "(docs/operating.md#the-medcell-cli)" in (ROOT / "README.md").read_text()
    assert "| command | does |" in section(MANUAL.read_text(), CLI_SECTION)


# -- the checks themselves catch what they are for ----------------------------------------------


def test_a_setting_read_but_not_documented_is_caught(tmp_path):
    (tmp_path / "tool.py").write_text('import os\nos.environ.get("MEDCELL_SHINY", "3s")\n')
    (tmp_path / "run.sh").write_text('sleep "${MEDCELL_NAP:-5}"\n')
    rows = settings_tables(
        ["| variable | default | meaning |\n|---|---|---|\n| `MEDCELL_NAP` | `4` | x |"]
    )
    assert undocumented_settings(settings_in_code(tmp_path), rows) == [
        "MEDCELL_NAP: the code's default '5' is in none of its rows",
        "MEDCELL_SHINY is read by the code but has no row in a settings table of docs/",
    ]


def test_a_command_or_option_not_in_the_manual_is_caught():
    @click.group()
    def root():
        pass

    @root.command()
    @click.argument("slug")
    @click.option("--json", is_flag=True)
    @click.option("--colour")
    def paint(slug, json, colour):
        pass

    @root.command()
    @click.option("--json", is_flag=True)
    def polish(json):
        pass

    manual = "| command | does |\n|---|---|\n| `medcell paint SLUG EXTRA` | paints |\n"
    assert commands_missing_from(manual + "`medcell paint --brush`", commands(root)) == [
        "`medcell paint SLUG EXTRA`: names 2 arguments, `medcell paint` takes 1",
        "`medcell paint --brush`: `medcell paint` has no option --brush",
        "`medcell paint --colour` is not in the manual's CLI section",
        "`medcell polish` is not in the manual's CLI section",
    ]
