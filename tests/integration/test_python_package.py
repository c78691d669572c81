"""The binding installs with pip (no network) and works from the install."""
import os
import subprocess
import sys

from conftest import PYTHON_PRELOAD, ROOT


def test_pip_install_and_import(tmp_path, env):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index", "-q",
                          str(ROOT / "bindings" / "python")], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    code = ("import banger, json; c = banger.open('local:%s'); "
            "print(json.dumps([banger.__file__, c.status()['version'], banger.version()]))" % (tmp_path / "st"))
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": "",
                                            **({"LD_PRELOAD": PYTHON_PRELOAD} if PYTHON_PRELOAD else {})})
    assert out.returncode == 0, out.stderr
    path, ver, stamp = __import__("json").loads(out.stdout)
    assert str(venv) in path  # imported from the installed copy, not the source tree
    assert stamp.startswith(ver)
