"""`pip install .` (not editable) gives a working `medcell` command and gateway: nothing at run
time reaches into the source tree, and every package the code imports is declared.

Install tier (`--install`, make test does; the import check is in the default tier): builds the
wheel from a copy of the sources and installs it into a fresh virtualenv, without the package
index (the third-party packages come from this environment's site-packages, put on its path).
"""

import ast
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devsupport.gateway import GatewayServer

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "medcell_common", "services", "provisioner", "gateway")
PACKAGES = ("medcell_common", "services", "provisioner", "gateway")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the medcell wheel installed; returns its bin/ folder."""
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(base / "dist"), str(source)],
        cwd=base,
    )  # fmt: skip
    (wheel,) = (base / "dist").glob("medcell-*.whl")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    run([str(venv / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheel)], cwd=base)
    # The dependencies, without the package index: this environment's site-packages as a plain
    # path entry, so its .pth files (this checkout's editable install) are not processed.
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def run(command: list[str], cwd: Path, **options) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)} | options.pop("env", {})
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **options
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.install
def test_the_installed_code_comes_from_the_venv_not_the_checkout(installed, tmp_path):
    found = run(
        [str(installed / "python"), "-c", "import provisioner, gateway; print(provisioner.__file__,"
         " gateway.__file__)"],
        cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(installed.parent)) for path in found), found


@pytest.mark.install
def test_the_installed_medcell_command_runs(installed, tmp_path):
    assert "facility" in run([str(installed / "medcell"), "--help"], cwd=tmp_path).stdout
    python = str(installed / "python")
    module = run([python, "-m", "provisioner", "facility", "--help"], cwd=tmp_path)
    assert "create" in module.stdout


@pytest.mark.install
def test_the_installed_gateway_serves(installed, tmp_path):
    class InstalledGateway(GatewayServer):
        def launch(self) -> None:
            self.log = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [str(installed / "python"), "-m", "gateway", "serve"],
                cwd=tmp_path, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    gateway = InstalledGateway(tmp_path / "gw", MEDCELL_GATEWAY_WORKERS="1")
    gateway.make_tls_files()
    gateway.write_routes({}, generation=1)
    try:
        gateway.start(generation=1)
        gateway.wait_started()
        answer = gateway.http.get(f"{gateway.url}/healthz", verify=gateway.cert, timeout=10)
        assert answer.status_code == 200
    finally:
        gateway.stop()


def test_every_package_the_code_imports_is_declared():
    with open(ROOT / "pyproject.toml", "rb") as f:
        declared = {
            canonicalize_name(Requirement(r).name)
            for r in tomllib.load(f)["project"]["dependencies"]
        }
    providers = packages_distributions()
    undeclared = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in PACKAGES or top in sys.stdlib_module_names:
                        continue
                    dists = {canonicalize_name(d) for d in providers.get(top, [top])}
                    if not dists & declared:
                        undeclared[top] = str(path.relative_to(ROOT))
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


@pytest.mark.install
def test_the_wheel_holds_the_gateway_templates_and_no_tests(installed):
    (site,) = (installed.parent / "lib").glob("python3*/site-packages")
    assert (site / "gateway" / "templates" / "nginx.conf").is_file()
    assert (site / "gateway" / "gunicorn_settings.py").is_file()
    assert not (site / "tests").exists() and not (site / "deploy").exists()
