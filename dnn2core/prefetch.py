"""Download everything the pages can use, before class: ``make prefetch``.

Why: a page that downloads 65 MB of photos or 58 MB of VGG16 weights when thirty learners open it
in class is a page that waits, or falls back to a stand-in. This command fetches each item once into
the Keras cache (``KERAS_HOME``, where the pages' loaders look after ``DNN2_DATA_DIR``), with
Keras' progress bars, and verifies the checksums Keras itself publishes (``mnist.npz``'s sha256 and
VGG16's md5, copied from the installed Keras source named beside each constant; the test suite
checks they still appear there). Items without a published checksum print their sha256 instead.

Offline (``DNN2_OFFLINE=1``, or no route to a download site within a few seconds) every missing item
fails at once with what to copy where; nothing hangs.

    python -m dnn2core.prefetch [--only mnist,vgg16]
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from dnn2core import check, data

__all__ = ["ITEMS", "MNIST_SHA256", "Outcome", "PrefetchError", "VGG16_NOTOP_MD5", "main", "prefetch"]

# keras/src/datasets/mnist.py: get_file(..., file_hash="731c…") for mnist.npz (sha256)
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# keras/src/applications/vgg16.py: WEIGHTS_PATH_NO_TOP's file_hash (md5); Keras publishes none for MobileNetV2
VGG16_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"
AMES_OPENML_ID = 42165  # OpenML "house_prices": Kaggle's train.csv, 1,460 sales x 81 columns
REACH_TIMEOUT_S = 3.0
STALL_TIMEOUT_S = 60.0  # a transfer that sends nothing for this long fails instead of hanging


class PrefetchError(RuntimeError):
    """An item could not be fetched: the message says why and what to do instead."""


@dataclass(frozen=True)
class Outcome:
    item: str
    status: str  # "here", "downloaded", "failed"
    words: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_REACHED: dict[tuple[str, int], str | None] = {}


def _online(host: str, what: str, port: int = 443) -> None:
    """Fail fast, once per host, when downloads are off or the host does not answer."""
    if data.offline():
        raise PrefetchError(f"not downloaded: DNN2_OFFLINE=1 is set (downloads are off). Unset it, or copy {what} "
                            "by hand.")
    if (host, port) not in _REACHED:
        _REACHED[(host, port)] = check._reach(host, REACH_TIMEOUT_S, port)
    why = _REACHED[(host, port)]
    if why is not None:
        raise PrefetchError(f"cannot reach {host} ({why}): no internet on this server? Copy {what} by hand.")


def _get_file(fname: str, url: str, subdir: str, file_hash: str | None = None) -> Path:
    """``keras.utils.get_file`` into ``KERAS_HOME/<subdir>`` with its progress bar and hash check."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    _online(parts.hostname or "", f"{fname} (from {url}) into {data.keras_home() / subdir}",
            parts.port or (443 if parts.scheme == "https" else 80))
    import keras

    target = data.keras_home() / subdir / fname
    try:  # Keras falls back to /tmp/.keras when its folder does not exist yet: make it first
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrefetchError(f"{target.parent} cannot be created ({exc.strerror}): set KERAS_HOME to a writable "
                            "folder.") from None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(STALL_TIMEOUT_S)
    try:
        path = Path(keras.utils.get_file(fname, origin=url, file_hash=file_hash, cache_subdir=subdir,
                                         cache_dir=str(data.keras_home())))
    except ValueError as exc:  # the hash did not match: never leave a corrupt file where loaders look
        target.unlink(missing_ok=True)
        raise PrefetchError(f"the download of {fname} did not match Keras' published checksum ({exc}); "
                            "it was removed. Try again.") from None
    except Exception as exc:  # noqa: BLE001 - urllib and Keras raise plain Exception for HTTP errors
        raise PrefetchError(f"the download of {fname} failed: {exc}") from None
    finally:
        socket.setdefaulttimeout(old)
    if path.resolve() != target.resolve():
        raise PrefetchError(f"{data.keras_home()} is not writable: Keras saved {fname} to {path} instead, where the "
                            "pages do not look. Set KERAS_HOME to a writable folder.")
    return path


def _checked(file_hash: str | None, path: Path) -> str:
    if file_hash is None:
        return f"no published checksum; sha256 {_sha256(path)[:16]}…"
    return "checksum verified against Keras' published " + ("sha256" if len(file_hash) == 64 else "md5")


# --------------------------------------------------------------------------------------------
# The items
# --------------------------------------------------------------------------------------------


def _have_mnist() -> str | None:
    status, words = check.mnist_finding()
    return words if status == "ok" else None


def _fetch_mnist() -> str:
    path = _get_file("mnist.npz", data.MNIST_URL, "datasets", MNIST_SHA256)
    status, words = check.mnist_finding()
    if status != "ok":
        raise PrefetchError(f"mnist.npz was downloaded but does not read as the full set: {words}")
    return f"{words.rstrip('.')} ({_checked(MNIST_SHA256, path)})."


def _have_cats_dogs() -> str | None:
    status, words = check.cats_dogs_finding()
    return words if status == "ok" else None


def _fetch_cats_dogs() -> str:
    from dnn2core import catsdogs

    path = _get_file(catsdogs.FILTERED_ZIP, catsdogs.FILTERED_URL, "datasets")
    digest = _checked(None, path)
    folder = catsdogs.download_filtered()  # unpacks the cached zip (images only, checked) next to it
    if folder is None:
        raise PrefetchError(f"{catsdogs.FILTERED_ZIP} was downloaded but could not be unpacked; it was removed.")
    return f"{folder.describe()} ({digest})."


def _have_traffic() -> str | None:
    status, words = check.traffic_finding()
    return words if status == "ok" else None


def _fetch_traffic() -> str:
    from dnn2core import forecasting as fc

    path = _get_file(fc.TRAFFIC_FILE, fc.TRAFFIC_URL, "datasets")
    try:
        loaded = fc.load_traffic()
    except ValueError as exc:
        path.unlink(missing_ok=True)
        raise PrefetchError(f"{fc.TRAFFIC_FILE} was downloaded but is not the UCI file ({exc}); it was removed.")
    if loaded.provenance.stand_in:
        raise PrefetchError(f"{fc.TRAFFIC_FILE} was downloaded but the page still finds no traffic series.")
    return f"{loaded.provenance.detail} ({_checked(None, path)})."


def _have_housing() -> str | None:
    status, words = check.housing_finding()
    return words if status == "ok" else None


def _fetch_housing() -> str:
    """Kaggle's train.csv needs a Kaggle account; OpenML serves the same table (id 42165), and
    scikit-learn checks its md5 against OpenML's description while fetching."""
    from dnn2core import regression

    _online("www.openml.org", f"Kaggle's train.csv as {data.keras_cache_dir() / 'ames_train.csv'}")
    from sklearn.datasets import fetch_openml

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(STALL_TIMEOUT_S)
    try:
        with tempfile.TemporaryDirectory(prefix="dnn2-openml-") as home:
            print(f"Downloading OpenML dataset {AMES_OPENML_ID} (house_prices, about 0.5 MB)")
            frame = fetch_openml(data_id=AMES_OPENML_ID, as_frame=True, data_home=home, parser="auto").frame
    except Exception as exc:  # noqa: BLE001 - network, HTTP and md5 errors all mean "not fetched"
        raise PrefetchError(f"OpenML's copy of Kaggle's train.csv could not be fetched: {exc}") from None
    finally:
        socket.setdefaulttimeout(old)
    if frame.shape != (1460, 81) or regression.TARGET not in frame.columns:
        raise PrefetchError(f"OpenML dataset {AMES_OPENML_ID} is not Kaggle's 1,460 x 81 train.csv "
                            f"(got {frame.shape[0]:,} x {frame.shape[1]}); nothing was written.")
    target = data.keras_cache_dir() / "ames_train.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    frame.to_csv(tmp, index=False, na_rep="NA")
    tmp.replace(target)
    status, words = check.housing_finding()
    if status != "ok":
        raise PrefetchError("ames_train.csv was written but the page does not find it.")
    return f"{words.rstrip('.')} (1,460 sales x 81 columns; md5 verified by scikit-learn against OpenML's description)."


def _have_weights(arch: str) -> Callable[[], str | None]:
    def have() -> str | None:
        status, words = check.weights_finding(arch)
        return words if status == "ok" else None
    return have


def _fetch_weights(arch: str) -> Callable[[], str]:
    def fetch() -> str:
        from dnn2core import pretrained

        s = pretrained.spec(arch)
        file_hash = VGG16_NOTOP_MD5 if arch == "vgg16" else None
        path = _get_file(s.weights_file, s.url, "models", file_hash)
        return f"{s.label} ImageNet weights, {path.stat().st_size / 2**20:.0f} MB ({_checked(file_hash, path)})."
    return fetch


@dataclass(frozen=True)
class Item:
    name: str
    have: Callable[[], str | None]  # where it already is, in words; None when it is not here
    fetch: Callable[[], str]  # downloads it; words on success, PrefetchError otherwise


ITEMS = (
    Item("mnist", _have_mnist, _fetch_mnist),
    Item("cats_dogs", _have_cats_dogs, _fetch_cats_dogs),
    Item("traffic", _have_traffic, _fetch_traffic),
    Item("housing", _have_housing, _fetch_housing),
    Item("vgg16", _have_weights("vgg16"), _fetch_weights("vgg16")),
    Item("mobilenet_v2", _have_weights("mobilenet_v2"), _fetch_weights("mobilenet_v2")),
)


def _cached_file_ok(name: str) -> bool:
    """False when the copy the page reads is Keras' cached file and no longer matches Keras' published
    checksum (a cut-off download): it is fetched again. An administrator's own copy is not judged."""
    from dnn2core import pretrained

    if name == "mnist":
        if data.find_file(["mnist.npz"], ("", "mnist")) is not None:
            return True
        path, file_hash = data.keras_cache_dir() / "mnist.npz", MNIST_SHA256
    elif name == "vgg16":
        found, source, _ = pretrained.find_weights("vgg16")
        if found is None or source != "Keras cache":
            return True
        path, file_hash = found, VGG16_NOTOP_MD5
    else:
        return True
    if not path.is_file():
        return True
    h = hashlib.sha256() if len(file_hash) == 64 else hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == file_hash


def prefetch(only: Sequence[str] = (), out=None) -> list[Outcome]:
    """Fetch each missing item; one outcome per item, printed as it is known."""
    out = out if out is not None else sys.stdout
    outcomes = []
    for item in ITEMS:
        if only and item.name not in only:
            continue
        where = item.have()
        if where is not None and _cached_file_ok(item.name):
            outcome = Outcome(item.name, "here", f"{where} Not downloaded again.")
        else:
            try:
                outcome = Outcome(item.name, "downloaded", item.fetch())
            except PrefetchError as exc:
                outcome = Outcome(item.name, "failed", str(exc))
        print(f"{outcome.item:<13} {outcome.status.upper() if outcome.status == 'failed' else outcome.status:<10} "
              f"{outcome.words}", file=out, flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dnn2core.prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="comma-separated: " +
                        ", ".join(i.name for i in ITEMS))
    args = parser.parse_args(argv)
    names = [n.strip() for v in args.only for n in v.split(",") if n.strip()]
    names = [check.ALIASES.get(n, n) for n in names]
    unknown = [n for n in names if n not in {i.name for i in ITEMS}]
    if unknown:
        print(f"Unknown item(s) {', '.join(unknown)}: choose from {', '.join(i.name for i in ITEMS)}.", file=sys.stderr)
        return 2
    outcomes = prefetch(names)
    failed = [o.item for o in outcomes if o.status == "failed"]
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} item(s) ready"
          + (f"; not fetched: {', '.join(failed)}." if failed else "."))
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
