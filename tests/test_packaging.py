"""
Packaging: the wheel ships the twistd dropin without claiming Twisted's own
packages, and the dropin stays cheap to scan; one version, PEP 639 license
metadata (no deprecation banner on install); the optional features each
need their extra, and say so in one line when it is missing.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

import txpulse
from txpulse._extras import EXTRAS, MissingExtra

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    """
    The wheel built from the working tree, and the build's output (verbose:
    setuptools' warnings included).
    """
    out = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy of what the wheel is made of: setuptools reuses
    # the checkout's build/ directory, which may hold modules that have since
    # moved or been deleted.
    tree = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "dropin.cache")
    for name in ("src", "twisted"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.cfg", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("txpulse-*.whl")
    return zipfile.ZipFile(path), result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(built: tuple[zipfile.ZipFile, str]) -> zipfile.ZipFile:
    return built[0]


def metadata(wheel: zipfile.ZipFile) -> Message:
    """
    The wheel's C{METADATA}.
    """
    (name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(wheel.read(name))


def pyproject() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def test_wheel_contains_the_dropin_but_not_twisted_packages(wheel: zipfile.ZipFile) -> None:
    """
    The wheel has C{twisted/plugins/txpulse_plugin.py} and neither
    C{twisted/__init__.py} nor C{twisted/plugins/__init__.py}, which belong
    to Twisted (shipping them would break Twisted on uninstall).
    """
    names = set(wheel.namelist())
    assert "twisted/plugins/txpulse_plugin.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names


def test_wheel_contains_package_data(wheel: zipfile.ZipFile) -> None:
    """
    The static site and the typing marker are package data.
    """
    names = set(wheel.namelist())
    assert "txpulse/demos/static/index.html" in names
    assert "txpulse/py.typed" in names


def test_wheel_contains_every_module(wheel: zipfile.ZipFile) -> None:
    """
    Every module and static file of C{src/txpulse} is in the wheel (each
    package has to be listed in C{setup.cfg}), and nothing else of it is.
    """
    source = ROOT / "src"
    expected = {
        path.relative_to(source).as_posix()
        for path in (source / "txpulse").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    shipped = {name for name in wheel.namelist() if name.startswith("txpulse/")}
    assert shipped == expected


def test_plugin_is_found_and_cheap_to_scan() -> None:
    """
    C{getPlugins(IServiceMaker)} finds the C{txpulse} tapname, and scanning
    plugins imports neither txpulse's adapters nor its core.
    """
    code = (
        "import sys\n"
        "from twisted.plugin import getPlugins\n"
        "from twisted.application.service import IServiceMaker\n"
        "names = [p.tapname for p in getPlugins(IServiceMaker)]\n"
        "print('txpulse' in names, sorted(m for m in sys.modules if m.startswith('txpulse')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.strip() == "True []"


def test_version_has_one_source(wheel: zipfile.ZipFile) -> None:
    """
    C{txpulse.__version__} is the version: C{pyproject.toml} reads it from
    there (dynamic, no literal of its own) and the wheel carries it.
    """
    project = pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "txpulse.__version__"}
    assert metadata(wheel)["Version"] == txpulse.__version__
    assert wheel.filename is not None and f"txpulse-{txpulse.__version__}-" in Path(wheel.filename).name


def test_license_metadata_is_pep_639(built: tuple[zipfile.ZipFile, str]) -> None:
    """
    The license is an SPDX expression with its file in the wheel (PEP 639),
    and building prints no deprecation warning about it (the old
    C{license = {text = ...}} table printed one on every install).
    """
    wheel, log = built
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel.namelist())
    assert "adding license file" in log, "the log is the verbose one"
    assert "deprecat" not in log.lower(), log


def test_extras_match_the_features_that_need_them(wheel: zipfile.ZipFile) -> None:
    """
    Each extra L{txpulse._extras.EXTRAS} names is declared, installs the
    module that feature imports, and is part of C{all}; C{test} installs
    C{all} (so C{make serve} and C{make test} have everything); none of
    them is a plain dependency.
    """
    project = pyproject()["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    plain = " ".join(project["dependencies"]).lower()
    for extra, (module, _) in EXTRAS.items():
        assert any(requirement.lower().startswith(module.lower()) for requirement in extras[extra]), extra
        assert module.lower() not in plain, f"{module} is a plain dependency"
    assert extras["all"] == [f"txpulse[{','.join(EXTRAS)}]"]
    assert "txpulse[all]" in extras["test"]
    provided = set(metadata(wheel).get_all("Provides-Extra") or [])
    assert {*EXTRAS, "all", "docs", "test"} <= provided


def run_without(modules: list[str], code: str, argv: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """
    Run C{code} in a fresh interpreter where importing any of C{modules}
    fails as if it were not installed (C{sys.modules[name] = None}).
    """
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys\n{block}sys.argv = {argv or ['-c']!r}\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


TWISTD = "from twisted.scripts.twistd import run\nrun()\n"


@pytest.mark.parametrize(
    ("extra", "argv"),
    [
        ("redis", ["twistd", "-n", "txpulse", "--broker", "redis://127.0.0.1:1/0"]),
        ("auth", ["twistd", "-n", "txpulse", "--auth-keys", "{keys}", "--jwk", "{keys}"]),
        ("metrics", ["twistd", "-n", "txpulse", "--metrics-listen", "tcp:0:interface=127.0.0.1"]),
        ("metrics", ["twistd", "-n", "txpulse", "--auth-keys", "{keys}", "--protect", "/metrics"]),
    ],
)
def test_plugin_option_without_its_extra_is_one_line(extra: str, argv: list[str], tmp_path: Path) -> None:
    """
    A C{twistd txpulse} option whose feature needs a missing extra exits 1
    with one line naming it, not twistd's usage text or a traceback:
    C{txpulse: the Redis broker needs `pip install txpulse[redis]`}.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k" * 40: "alice"}))
    argv = [arg.replace("{keys}", str(keys)) for arg in argv]
    result = run_without([EXTRAS[extra][0]], TWISTD, argv)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr == str(MissingExtra(extra)) + "\n"
    assert f"`pip install txpulse[{extra}]`" in result.stderr


def test_missing_extra_line() -> None:
    """
    The line names the feature and the exact command, e.g. for Redis.
    """
    assert str(MissingExtra("redis")) == "txpulse: the Redis broker needs `pip install txpulse[redis]`"


def test_gen_key_without_jwcrypto_is_one_line() -> None:
    """
    C{txpulse gen-key} without the C{auth} extra prints one line and exits 1.
    """
    result = run_without(["jwcrypto"], "from txpulse.plugin.command import main\nsys.exit(main(['gen-key']))\n")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", str(MissingExtra("auth")) + "\n")


def test_plain_install_runs_without_any_extra() -> None:
    """
    Without any extra, the plugin's options parse (API keys included), its
    service and tree build (everything but C{/metrics}, with one warning
    saying why), and the client, the CLI and the testing harness import.
    """
    code = (
        "import json, tempfile\n"
        "from twisted.logger import globalLogPublisher\n"
        "lines = []\n"
        "globalLogPublisher.addObserver(lambda event: lines.append(event.get('log_format', '') and event))\n"
        "from twisted.logger import formatEvent\n"
        "from txpulse.plugin.tap import Options, makeService\n"
        "keys = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)\n"
        "json.dump({'k' * 40: 'alice'}, keys); keys.close()\n"
        "options = Options()\n"
        "options.parseOptions(['--listen', 'tcp:0:interface=127.0.0.1', '--auth-keys', keys.name, '--protect', '/pubsub'])\n"
        "top = makeService(options)\n"
        "site = [s for s in top if hasattr(s, 'factory')][0].factory\n"
        "children = sorted(name.decode() for name in site.resource.children)\n"
        "import txpulse.client.cli, txpulse.testing\n"
        "from txpulse import WebSocketClientEndpoint, WebSocketResource\n"
        "print(json.dumps({'children': children, 'log': [formatEvent(e) for e in lines if e],\n"
        "                  'loaded': sorted(m for m in ('jwcrypto', 'txredisapi', 'prometheus_client') if sys.modules.get(m))}))\n"
    )
    result = run_without([module for module, _ in EXTRAS.values()], code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["children"] == ["chat", "echo", "pubsub", "ws"]
    assert report["loaded"] == []
    assert [line for line in report["log"] if "txpulse[metrics]" in line] == [
        str(MissingExtra("metrics")) + " (/metrics is not mounted)"
    ]


def test_registry_without_prometheus_mounts_no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    In process: a L{ConnectionRegistry} built without C{prometheus_client}
    has no C{metrics}; the tree leaves C{/metrics} out; a
    L{MetricsResource} on it raises L{MissingExtra}.
    """
    from twisted.internet.task import Clock

    from txpulse.plugin.metrics import ConnectionRegistry, MetricsResource
    from txpulse.plugin.tap import Options, buildRoot

    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    registry = ConnectionRegistry(clock=Clock(), logConnections=False)
    assert registry.metrics is None
    options = Options()
    options.parseOptions([])
    root = buildRoot(options, registry, Clock())
    assert b"metrics" not in root.children and b"echo" in root.children
    with pytest.raises(MissingExtra, match=r"txpulse\[metrics\]"):
        MetricsResource(registry)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("variables", "listen"),
    [([], "--listen tcp:8080"), (["HOST=127.0.0.1"], "--listen tcp:8080:interface=127.0.0.1")],
)
def test_make_serve_host(variables: list[str], listen: str) -> None:
    """
    C{make serve} listens on every interface, C{make serve HOST=127.0.0.1}
    on loopback only (checked with C{make -n}: nothing runs).
    """
    result = subprocess.run(
        ["make", "-n", "serve", *variables], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    (command,) = [line for line in result.stdout.splitlines() if "twistd" in line]
    assert command.endswith(f"-n txpulse {listen}"), command
