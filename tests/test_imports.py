"""dnn2core never imports Streamlit; the home and convolution pages never import TensorFlow."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dnn2core
from conftest import ROOT


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_dnn2core_imports_no_streamlit_nor_tensorflow():
    modules = [m.name for m in pkgutil.iter_modules(dnn2core.__path__)]
    assert {"convolution", "data", "uploads", "device", "plots"} <= set(modules)
    code = ("import sys\n" + "".join(f"import dnn2core.{m}\n" for m in modules)
            + "print(sorted(m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules))")
    assert _run(code) == "[]"


def test_home_and_convolution_pages_render_without_tensorflow():
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "at.switch_page('pages/convolution.py').run()\n"
        "assert not at.exception, at.exception\n"
        "assert at.title[0].value == 'Convolution playground'\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    assert _run(code) == "False False"
