"""``chainrule data``, and data errors named at once, on tiny IDX files (no network, ever)."""

from __future__ import annotations

import dataclasses
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import chainrule.datasets.mnist as mnist_module
from chainrule.cli import data as data_command
from chainrule.cli import main
from chainrule.cli.common import ArgumentParser, UserError
from chainrule.datasets import DatasetError, load_mnist
from chainrule.datasets.inventory import download_dataset, inventory
from mnist_data import FILE_NAMES, Tiny


@pytest.fixture
def tinies(tmp_path, monkeypatch) -> dict[str, Tiny]:
    """Both datasets replaced by tiny pinned files; a private cache; no network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.delenv("CHAINRULE_OFFLINE", raising=False)
    found = {}
    for seed, key in enumerate(("mnist", "fashion-mnist")):
        found[key] = Tiny(tmp_path, key, seed)
        monkeypatch.setitem(mnist_module._SPECS, key, found[key].spec)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(mnist_module, "_download", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return found


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``chainrule data ARGV`` as :func:`chainrule.cli.main` runs a command (exit 2 and one
    line on a UserError), through the command's own parser."""
    parser = ArgumentParser(prog="chainrule")
    data_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *argv])
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"chainrule data: error: {exc}", file=sys.stderr)
        code = 2
    out, err = capsys.readouterr()
    return code, out, err


def fill(root: Path, tinies: dict[str, Tiny]) -> Path:
    for key, tiny in tinies.items():
        tiny.put(root / key)
    return root


def test_where_lists_the_places_in_order_and_what_they_hold(tinies, tmp_path, capsys, monkeypatch):
    root = fill(tmp_path / "data", tinies)
    monkeypatch.setenv("CHAINRULE_DATA", str(root))
    given = tmp_path / "given"
    given.mkdir()
    code, out, err = run(capsys, "--data-dir", str(given))
    assert code == 0, err
    lines = out.splitlines()
    assert "1. --data-dir" in lines[1] and str(given) in lines[1]
    assert "2. $CHAINRULE_DATA" in lines[2] and str(root) in lines[2]
    assert "3. user cache" in lines[3]
    for key in tinies:
        assert f"{root / key}  ($CHAINRULE_DATA)" in out
    assert out.count("all 4 files found") == 2
    assert out.index(str(given)) < out.index(str(root / "mnist"))  # the order of the search


def test_verify_names_a_corrupt_file_and_fails(tinies, tmp_path, capsys, monkeypatch):
    root = fill(tmp_path / "data", tinies)
    monkeypatch.setenv("CHAINRULE_DATA", str(root))
    code, out, _ = run(capsys, "verify", "--dataset", "mnist")
    assert code == 0 and out.count("SHA-256 verified") == 4 and "Fashion" not in out
    (root / "mnist" / FILE_NAMES["test_labels"]).write_bytes(b"not the labels")
    code, out, _ = run(capsys, "verify", "--dataset", "mnist")
    assert code == 1
    assert "CORRUPT" in out and "missing: t10k-labels-idx1-ubyte.gz" in out
    reports = inventory("mnist", verify=True)
    assert [f.status for f in reports[0].files].count("corrupt") == 1


def test_a_bad_chainrule_data_is_shown_and_named_at_once(tinies, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "no" / "such" / "dir"
    monkeypatch.setenv("CHAINRULE_DATA", str(bad))
    calls = []
    monkeypatch.setattr(mnist_module, "_download", lambda url, out: calls.append(url))
    code, out, _ = run(capsys, "--dataset", "mnist")
    assert code == 1
    assert f"{bad}  ($CHAINRULE_DATA)  <- NO SUCH FOLDER" in out
    code = main(["train", "--iterations", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"$CHAINRULE_DATA={bad}: no such folder" in err
    assert calls == []  # not one download tried


def fake_mirrors(tinies: dict[str, Tiny], calls: list[str]):
    def download(url: str, out) -> None:
        calls.append(url)
        name = url.rpartition("/")[2]
        key = "fashion-mnist" if "fashion" in url else "mnist"
        out.write(tinies[key].contents[name])

    return download


def test_download_to_a_folder_then_use_it(tinies, tmp_path, capsys, monkeypatch):
    for key, tiny in tinies.items():  # mirror URLs that say which dataset they serve
        mirrors = tuple(m.replace("/mnist/", f"/{key}/") for m in tiny.spec.mirrors)
        spec = dataclasses.replace(tiny.spec, mirrors=mirrors)
        monkeypatch.setitem(mnist_module._SPECS, key, spec)
    calls: list[str] = []
    monkeypatch.setattr(mnist_module, "_download", fake_mirrors(tinies, calls))
    target = tmp_path / "mine"
    code, out, err = run(capsys, "download", "--to", str(target))
    assert code == 0, err
    assert len(calls) == 8 and f"CHAINRULE_DATA={target}" in out
    assert sorted(p.name for p in (target / "mnist").iterdir()) == sorted(FILE_NAMES.values())
    code, out, err = run(capsys, "download", "--to", str(target))  # all there: nothing fetched
    assert code == 0 and len(calls) == 8
    monkeypatch.setenv("CHAINRULE_OFFLINE", "1")
    (x, _), _ = load_mnist(data_dir=target, normalize=False)
    assert (x == tinies["mnist"].arrays["train_images"].reshape(5, -1)).all()


def test_download_stops_at_once_when_offline(tinies, tmp_path, capsys, monkeypatch):
    calls = []

    def offline(url, out):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(mnist_module, "_download", offline)
    code, _, err = run(capsys, "download", "--to", str(tmp_path / "mine"))
    assert code == 2 and len(calls) == 1
    assert "no network" in err and "CHAINRULE_DATA=" in err
    with pytest.raises(DatasetError, match="no network"):
        download_dataset("mnist", tmp_path / "mine")
    assert len(calls) == 2


def test_to_goes_with_download_only(tinies, capsys):
    code, _, err = run(capsys, "verify", "--to", "x")
    assert code == 2 and "--to goes with 'download' only" in err
