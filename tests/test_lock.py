"""The locks are what setup.py asks for: every dependency pinned, within its
range, with hashes, and the node's runtime lock at the test lock's versions
(so what the tests ran is what a node installs). `make lock` refreshes both."""

import ast
import re
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
                 re.M)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    found = {canonicalize_name(n): v for n, v, _hashes in PIN.findall(text)}
    listed = re.findall(r"^[A-Za-z0-9._-]+==", text, re.M)
    assert len(found) == len(listed), f"{name}: a pin without its hashes"
    return found


def setup_requirements() -> tuple[list[Requirement], list[Requirement]]:
    """install_requires and the test extra, read from setup.py's source."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "setup")
    args = {k.arg: ast.literal_eval(k.value) for k in call.keywords
            if k.arg in ("install_requires", "extras_require")}
    return ([Requirement(r) for r in args["install_requires"]],
            [Requirement(r) for r in args["extras_require"]["test"]])


def test_every_requirement_is_pinned_within_its_range():
    runtime, test = setup_requirements()
    for lock, requirements in (("runtime.lock", runtime), ("test.lock", runtime + test)):
        pinned = pins(lock)
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{lock} lacks {name}: run make lock"
            assert requirement.specifier.contains(pinned[name]), (
                f"{lock} pins {name}=={pinned[name]}, outside setup.py's {requirement}")


def test_the_node_gets_the_versions_the_tests_ran():
    runtime, test = pins("runtime.lock"), pins("test.lock")
    assert {name: test.get(name) for name in runtime} == runtime


def test_this_environment_is_the_lock():
    """make installed exactly the test lock (the venv CI runs in)."""
    different = {}
    for name, pinned in pins("test.lock").items():
        installed = version(name)
        if installed != pinned:
            different[name] = (pinned, installed)
    assert different == {}, "the venv is not the lock: rm -rf .venv && make test"
