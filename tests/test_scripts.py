"""The README's two commands on a stock system Python: scripts/ create and use .venv.

Run with stand-ins for `python3`, `apt-get` and `sudo` on PATH that log their
calls, in a copy of scripts/ (nothing is installed).
"""

import os
import pathlib
import shutil
import stat
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# `python3 -m venv` fails like Debian's without python3-venv until apt installs it.
PYTHON3 = """#!/bin/bash
echo "python3 $*" >> "$LOG"
if [ "$1 $2" = "-m venv" ]; then
  [ -f "$STATE/python3-venv" ] || { echo "ensurepip is not available" >&2; exit 1; }
  mkdir -p "$3/bin"
  cp "$STATE/venv-python" "$3/bin/python"
  for tool in tfadmm ruff; do
    printf '#!/bin/bash\\necho "%s $*" >> "$LOG"\\n' "$tool" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
  done
fi
"""
VENV_PYTHON = """#!/bin/bash
echo "venv-python $*" >> "$LOG"
if [ "$1 $2" = "-m pytest" ]; then exit "${PYTEST_RC:-0}"; fi
"""
APT_GET = """#!/bin/bash
echo "apt-get $*" >> "$LOG"
case " $* " in *" python3-venv "*) touch "$STATE/python3-venv";; esac
"""
SUDO = """#!/bin/bash
exec "$@"
"""


@pytest.fixture
def sandbox(tmp_path):
    repo, bin_dir, state = tmp_path / "repo", tmp_path / "bin", tmp_path / "state"
    for path in (repo, bin_dir, state):
        path.mkdir()
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copytree(ROOT / ".ci", repo / ".ci")
    for folder, name, text in [(bin_dir, "python3", PYTHON3), (bin_dir, "apt-get", APT_GET),
                               (bin_dir, "sudo", SUDO), (state, "venv-python", VENV_PYTHON)]:
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    log = tmp_path / "log"
    log.touch()

    def run(*command, **extra):
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "LOG": str(log),
               "STATE": str(state), **extra}
        result = subprocess.run(["bash", *command], cwd=repo, env=env, capture_output=True,
                                text=True, timeout=60)
        lines = [line for line in log.read_text().splitlines() if "fashion-mnist" not in line]
        log.write_text("")
        return result, lines

    return run


def test_setup_creates_the_venv_installing_python3_venv_when_missing(sandbox):
    result, calls = sandbox("scripts/setup.sh")
    assert result.returncode == 0, result.stderr
    assert [c for c in calls if not c.startswith("apt-get install -y -qq dataset")] == [
        "python3 -m venv .venv",
        "apt-get update -qq",
        "apt-get install -y -qq python3-venv",
        "python3 -m venv .venv",
        "venv-python -m pip install -q --disable-pip-version-check -e .[test]",
    ]
    # Once it exists, the venv is reused.
    result, calls = sandbox("scripts/setup.sh")
    assert result.returncode == 0, result.stderr
    assert calls == ["venv-python -m pip --version",
                     "venv-python -m pip install -q --disable-pip-version-check -e .[test]"]


def test_quickstart_and_test_run_everything_from_the_venv(sandbox):
    sandbox("scripts/setup.sh")
    result, calls = sandbox("scripts/quickstart.sh", "--quiet")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == ("tfadmm run recipes/quickstart.yaml --output runs/quickstart --force "
                         "--quiet")
    result, calls = sandbox(".ci/run")
    assert result.returncode == 0, result.stderr
    assert calls[-4:] == [
        "ruff check .",
        "venv-python -m pytest",
        # The second pass: the core on Keras' JAX backend, in the same venv.
        "venv-python -m pip install -q --disable-pip-version-check jax[cpu]",
        "venv-python -m pytest -q tests/backend tests/test_lazy_tensorflow.py",
    ]
    assert not any(c.startswith("python3 ") and "venv" not in c for c in calls)


def test_a_run_that_collects_no_tests_fails(sandbox):
    sandbox("scripts/setup.sh")
    result, _ = sandbox("scripts/test.sh", PYTEST_RC="5")
    assert result.returncode == 1
    assert result.stderr == ("error: pytest collected no tests (exit 5): the suite or its "
                             "selection is broken\n")
    assert sandbox("scripts/test.sh", PYTEST_RC="3")[0].returncode == 3


def test_the_venv_is_not_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".venv/bin/python"], cwd=ROOT,
                             env={**os.environ})
    assert ignored.returncode == 0
