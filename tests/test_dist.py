"""The packaged app: build it with PyInstaller and run its own self-test (`make dist-test`).

Marked `dist`: the normal suite skips it (a build takes a quarter of an hour on two cores).
HEARTH_DIST_PREBUILT=1 tests the dist/Hearth/ already there instead of building it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.dist, pytest.mark.timeout(7200)]

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "dist" / "Hearth"
APP = APP_DIR / ("Hearth.exe" if sys.platform == "win32" else "Hearth")
MODEL = "SmolLM2-135M-Instruct"
MAX_SIZE = 2 * 1024**3  # a bigger build needs a reason in the README


@pytest.fixture(scope="module")
def app() -> Path:
    if os.environ.get("HEARTH_DIST_PREBUILT") != "1":
        subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "build.spec"],
                       cwd=ROOT, check=True, timeout=5400)
    assert APP.is_file() and os.access(APP, os.X_OK), f"no program at {APP}"
    return APP


def run_app(app: Path, data_dir: Path | str, *args: str, timeout: int = 1200,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the frozen program as a user would: no venv, no Python path, only the data folder set (and ``env``)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "HEARTH_"))} | (env or {})
    env["HEARTH_DATA_DIR"] = str(data_dir)
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([str(app), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=app.parent.parent)


def report_of(result: subprocess.CompletedProcess) -> dict:
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON report; stdout={result.stdout[-2000:]!r} stderr={result.stderr[-4000:]!r}"
    return json.loads(lines[-1])


def test_frozen_self_test_chats_with_the_bundled_model(app, tmp_path):
    data = tmp_path / "fresh-data"  # a machine that has never run Hearth
    result = run_app(app, data, "--self-test")
    report = report_of(result)
    assert report["ok"] is True, report
    assert result.returncode == 0
    assert report["model"] == MODEL
    assert report["new_tokens"] >= 16, report
    assert report["reply"].strip()
    assert report["decoder"] and report["kernels"]  # which loop answered, on which kernels
    assert not (data / "models" / MODEL).exists()  # the GGUF runs as it is: no converted copy (issue 11)
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are compiled ahead on Linux")
def test_without_a_compiler_the_frozen_app_runs_the_kernels_compiled_ahead(app, tmp_path):
    result = run_app(app, tmp_path / "data", "--self-test", env={"CC": "/nonexistent/cc"})
    report = report_of(result)
    assert report["ok"] is True, report
    assert "compiled ahead" in report["kernels"], report["kernels"]


def test_build_carries_the_model_and_leaves_out_what_users_do_not_need(app):
    files = [p for p in APP_DIR.rglob("*") if p.is_file() and not p.is_symlink()]
    names = [p.name for p in files]
    assert any(p.name == f"{MODEL}.Q4_1.gguf" and p.parent.name == "models" for p in files)
    assert (APP_DIR / "_internal" / "resources" / "about.md").is_file()
    assert not [n for n in names if n.endswith((".h", ".hpp", ".cuh"))]
    assert not [n for n in names if "WebEngine" in n or n.startswith(("libcudnn", "libtorch_cuda", "libnccl"))]
    torch_tests = [p for p in files if "/torch/test/" in p.as_posix()
                   or (p.parent.name == "bin" and p.name.startswith("test_"))]  # C++ test programs
    assert not torch_tests
    size = sum(p.stat().st_size for p in files)
    assert size < MAX_SIZE, f"dist/Hearth is {size / 1024**3:.2f} GB"


def test_data_folder_that_is_a_file_gets_a_clear_message(app, tmp_path):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("a file, not a folder")
    result = run_app(app, not_a_folder, "--self-test", timeout=300)
    assert result.returncode == 1
    assert "is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert report_of(result)["ok"] is False
    assert not_a_folder.read_text() == "a file, not a folder"  # nothing the user had is touched


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, where nothing can be created")
def test_data_folder_that_cannot_be_created_gets_a_clear_message(app):
    result = run_app(app, "/proc/hearth-test/data", "--self-test", timeout=300)
    assert result.returncode == 1
    assert "Cannot create the data folder" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_data_folder_gets_a_clear_message(app, tmp_path):
    data = tmp_path / "read-only"
    data.mkdir()
    data.chmod(0o555)
    try:
        result = run_app(app, data, "--self-test", timeout=300)
    finally:
        data.chmod(0o755)
    assert result.returncode == 1
    assert "not writable" in result.stderr and "Traceback" not in result.stderr


def test_two_launches_at_once_share_one_data_folder_safely(app, tmp_path):
    data = tmp_path / "shared-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "HEARTH_"))}
    env.update(HEARTH_DATA_DIR=str(data), QT_QPA_PLATFORM="offscreen")
    procs = [subprocess.Popen([str(app), "--self-test"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    for result in results:
        assert report_of(result)["ok"] is True, result.stderr[-3000:]
    models = data / "models"
    assert not models.exists() or not list(models.iterdir())  # no copies of the model, half-written or whole
    assert report_of(run_app(app, data, "--self-test"))["ok"] is True  # and it still loads afterwards
