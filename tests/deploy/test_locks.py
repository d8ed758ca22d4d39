"""The images' lock files: what each image runs is pinned, hashed and above the security floors.

Default tier: reads the sources, the Dockerfiles and the lock files; no Docker, no network.
"""

import ast
import json
import re
import sys
import tomllib
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGES = ("facility", "gateway", "supervisor")
FIRST_PARTY = {"medcell_common", "services", "provisioner", "gateway"}
# Commands the provisioner runs inside a facility container besides its CMD (wipe, shred-keys…).
EXTRA_ENTRIES = {"facility": ["services.facility.__main__"]}
# Releases that fixed a known vulnerability: no version range may admit anything older.
FIXED_IN = {
    "gunicorn": "23.0.0",  # CVE-2024-1135, CVE-2024-6827
    "werkzeug": "3.0.6",  # CVE-2024-49766, CVE-2024-49767
    "flask": "3.1.1",  # CVE-2025-47278
    "jinja2": "3.1.6",  # CVE-2025-27516
    "requests": "2.32.4",  # CVE-2024-47081
    "urllib3": "2.5.0",  # CVE-2025-50181
    "pillow": "11.3.0",  # CVE-2025-48379
    "idna": "3.7",  # CVE-2024-3651
    "certifi": "2024.7.4",  # CVE-2024-39689
}
LOCK_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s*--hash=\S+)*)", re.M)


def parse_lock(image: str) -> dict[str, tuple[Version, list[str]]]:
    """{canonical name: (version, hashes)} from deploy/locks/IMAGE.txt."""
    text = (DEPLOY / "locks" / f"{image}.txt").read_text()
    pinned = {
        canonicalize_name(name): (Version(version), re.findall(r"--hash=(\S+)", hashes))
        for name, version, hashes in LOCK_ENTRY.findall(text)
    }
    requirement_lines = [
        line for line in text.splitlines() if re.match(r"[A-Za-z0-9]", line) and "==" not in line
    ]
    assert not requirement_lines, f"unpinned lines in {image}.txt: {requirement_lines}"
    return pinned


def pyproject_dependencies() -> list[Requirement]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return [Requirement(r) for r in tomllib.load(f)["project"]["dependencies"]]


def dockerfile_command(image: str) -> list[str]:
    text = (DEPLOY / f"{image}.Dockerfile").read_text()
    (command,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    return json.loads(command)


def shipped(image: str) -> set[str]:
    """The first-party packages the image's Dockerfile copies into /app."""
    text = (DEPLOY / f"{image}.Dockerfile").read_text()
    return set(re.findall(r"^COPY (?:--\S+ )*(\w+)/ /app/\1/", text, re.M))


def module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def console_scripts() -> dict[str, str]:
    """{program name: distribution} for every console script installed here."""
    return {
        ep.name: canonicalize_name(ep.dist.name)
        for ep in entry_points(group="console_scripts")
        if ep.dist is not None
    }


def entries(image: str) -> tuple[list[Path], set[str]]:
    """What the image's command starts: first-party files to follow, and programs it runs."""
    command, files, programs = dockerfile_command(image), [], set()
    if Path(command[0]).name.startswith("python"):
        if command[1:2] == ["-m"]:
            module = command[2]
            files.append(module_file(f"{module}.__main__") or module_file(module))
    else:
        programs.add(Path(command[0]).name)
    for arg in command[1:]:
        if arg.startswith("/app/"):  # a settings file shipped in the image
            files.append(ROOT / arg.removeprefix("/app/"))
        elif re.fullmatch(r"[a-z_][\w.]*:\w+(\(\))?", arg):  # an app given as module:callable
            files.append(module_file(arg.split(":")[0]))
    files += [module_file(m) for m in EXTRA_ENTRIES.get(image, [])]
    assert None not in files, f"{image}: an entry point of its command is missing"
    return files, programs


def runtime_needs(image: str) -> dict[str, str]:
    """{distribution: why} for every third-party package the image's code can reach at run time.

    Follows imports (also inside functions) from the image's command through the first-party
    modules; module names given as strings (gunicorn's `logger_class`) and programs started as a
    command line (a list: a console script first, or `-m MODULE`) count too.
    """
    scripts, providers = console_scripts(), packages_distributions()
    todo, seen, needs = list(entries(image)[0]), set(), {}
    for program in entries(image)[1]:
        needs[scripts.get(program, program)] = f"the image's command runs {program}"
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        relative = path.relative_to(ROOT)
        package = ".".join(relative.with_suffix("").parts)
        if path.name != "__init__.py":
            package = package.rpartition(".")[0]
        # A module's parent packages run first.
        parts = package.split(".")
        todo += [f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i])))]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = parts[: len(parts) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                dotted = re.fullmatch(r"([a-z_]+)(\.[A-Za-z_]\w*)+", node.value)
                # A module or class named by a string; one this image does not ship is run in
                # another image's container (the facility's management commands, over Docker).
                if dotted and dotted.group(1) in FIRST_PARTY & shipped(image):
                    names = [node.value, node.value.rpartition(".")[0]]
            elif isinstance(node, ast.List | ast.Tuple) and node.elts:
                words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                if words[0] in scripts:
                    needs[scripts[words[0]]] = f"{relative} runs {words[0]}"
                if "-m" in words[:2]:  # [sys.executable, "-m", "gunicorn", ...]
                    names = [w for w in words[words.index("-m") + 1 :][:1] if isinstance(w, str)]
                    # A first-party module this image does not ship runs in another image's
                    # container (the facility's management commands, started over Docker).
                    names = [
                        n
                        for n in names
                        if n.split(".")[0] in shipped(image) or n.split(".")[0] not in FIRST_PARTY
                    ]
            for name in names:
                top = name.split(".")[0]
                if top in FIRST_PARTY:
                    if found := module_file(name):
                        todo.append(found)
                elif top and top not in sys.stdlib_module_names:
                    dists = providers.get(top)
                    assert dists, f"{relative} imports {top}, which no declared dependency provides"
                    needs.setdefault(canonicalize_name(dists[0]), f"{relative} imports {top}")
    return needs


@pytest.mark.parametrize("image", IMAGES)
def test_every_package_the_image_runs_is_in_its_lock_with_a_hash(image):
    locked = parse_lock(image)
    missing = {dist: why for dist, why in runtime_needs(image).items() if dist not in locked}
    assert not missing, f"not in deploy/locks/{image}.txt (run `make lock`): {missing}"
    for name, (_, hashes) in locked.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


@pytest.mark.parametrize("image", IMAGES)
def test_the_lock_holds_every_package_its_input_names(image):
    source = (DEPLOY / "locks" / f"{image}.in").read_text()
    names = {canonicalize_name(line) for line in source.splitlines() if line and line[0] != "#"}
    assert names and names <= set(parse_lock(image)), "run `make lock`"


@pytest.mark.parametrize("image", IMAGES)
def test_the_lock_satisfies_the_version_ranges_of_pyproject(image):
    locked = parse_lock(image)
    for requirement in pyproject_dependencies():
        name = canonicalize_name(requirement.name)
        if name in locked:
            version = locked[name][0]
            assert requirement.specifier.contains(version, prereleases=True), (
                f"deploy/locks/{image}.txt has {name}=={version}, pyproject.toml wants "
                f"{requirement.specifier}: run `make lock`"
            )


def test_version_ranges_admit_no_release_with_a_known_vulnerability():
    floors = {}
    for requirement in pyproject_dependencies():
        for spec in requirement.specifier:
            if spec.operator == ">=":
                floors[canonicalize_name(requirement.name)] = Version(spec.version)
    for name, fixed in FIXED_IN.items():
        assert name in floors, f"pyproject.toml sets no floor for {name}"
        assert floors[name] >= Version(fixed), (
            f"{name}>={floors[name]} admits releases before {fixed}"
        )


@pytest.mark.parametrize("image", IMAGES)
def test_the_image_installs_only_its_lock_with_hash_checking_and_no_index(image):
    text = (DEPLOY / f"{image}.Dockerfile").read_text()
    installs = re.findall(r"pip install ([^&]*)", text.replace("\\\n", " "))
    assert installs
    for options in installs:
        assert "--require-hashes" in options and "--no-index" in options, options
    assert "--require-hashes" in (DEPLOY / "build-wheels.sh").read_text()  # the download too
