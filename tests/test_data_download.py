"""data_download.download (against a local HTTP server: nothing leaves the machine) and
data_download.extract (safe extraction)."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import threading
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from data_download.download import DownloadError, download
from data_download.extract import (
    BadArchiveError,
    UnsafeArchiveError,
    extract_nested,
    safe_extract,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """A tiny file server that supports Range and can misbehave on request."""

    def __init__(self) -> None:
        self.fail_with: list[int] = []  # status codes for the next requests
        self.drop_after: int | None = None  # close the next response after this many bytes
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.ranges.append(self.headers.get("Range"))
                if self.path.startswith("/missing"):
                    self.send_error(404)
                    return
                if server.fail_with:
                    self.send_error(server.fail_with.pop(0))
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                body = PAYLOAD[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_after is not None:
                    self.wfile.write(body[: server.drop_after])
                    server.drop_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Tests never download: any request to a host other than the local server fails."""
    real = urllib.request.urlopen

    def guarded(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert url.startswith("http://127.0.0.1:"), f"a test tried to reach {url}"
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _get(server: _Server, dest: Path, **kw) -> Path:
    return download(f"{server.url}/file.zip", dest, progress=False, backoff=0.0, **kw)


def test_download_verifies_and_renames_into_place(server, tmp_path):
    out = _get(server, tmp_path / "f.zip", sha256=SHA)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "f.zip.part").exists()
    _get(server, tmp_path / "f.zip", sha256=SHA)  # present and verified: no new request
    assert len(server.ranges) == 1


def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    server.drop_after = 300_000
    out = _get(server, tmp_path / "f.zip", sha256=SHA)
    assert out.read_bytes() == PAYLOAD
    assert server.ranges == [None, "bytes=300000-"]


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    (tmp_path / "f.zip.part").write_bytes(PAYLOAD[:12345])
    assert _get(server, tmp_path / "f.zip", sha256=SHA).read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=12345-"]


def test_transient_errors_are_retried_permanent_ones_are_not(server, tmp_path):
    server.fail_with = [503, 502]
    assert _get(server, tmp_path / "f.zip").read_bytes() == PAYLOAD
    assert len(server.ranges) == 3
    with pytest.raises(DownloadError, match="404"):
        download(f"{server.url}/missing.zip", tmp_path / "m.zip", progress=False, backoff=0.0)
    assert len(server.ranges) == 4  # a 404 is not retried


def test_mirrors_are_tried_in_order(server, tmp_path):
    out = download(
        [f"{server.url}/missing.zip", f"{server.url}/file.zip"],
        tmp_path / "f.zip",
        progress=False,
        backoff=0.0,
        sha256=SHA,
    )
    assert out.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_file(server, tmp_path):
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        _get(server, tmp_path / "f.zip", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Safe extraction
# ----------------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "bad", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt", "..\\evil.txt"]
)
def test_zip_member_escaping_the_target_is_refused(tmp_path, bad):
    archive = _zip(tmp_path / "a.zip", {"good/first.txt": b"1", bad: b"evil"})
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []  # checked before writing anything
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../evil.txt"),
        tarfile.TarInfo("/abs/evil.txt"),
        _link("evil_link", "../../outside"),
        _link("dir/evil_link", "/etc/passwd"),
        _link("evil_hard", "../outside", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-up", "symlink-absolute", "hardlink-up"],
)
def test_tar_member_escaping_the_target_is_refused(tmp_path, member):
    archive = _tar(tmp_path / "a.tar.gz", [tarfile.TarInfo("good.txt"), member])
    with pytest.raises(UnsafeArchiveError, match="evil"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_good_archives_and_nested_archives_extract(tmp_path):
    inner = _tar(
        tmp_path / "images.tar.gz",
        [tarfile.TarInfo("images/a.png"), _link("images/b.png", "a.png")],
    )
    outer = _zip(
        tmp_path / "outer.zip",
        {"kvasir/images.tar.gz": inner.read_bytes(), "kvasir/readme.txt": b"hi"},
    )
    out = safe_extract(outer, tmp_path / "out", progress=False)
    extract_nested(out, progress=False)
    nested = out / "kvasir" / "images.extracted" / "images"
    assert (nested / "a.png").read_bytes() == b"x"
    assert (nested / "b.png").resolve() == (nested / "a.png").resolve()


def test_nested_archive_with_an_escaping_member_is_refused(tmp_path):
    inner = _tar(tmp_path / "masks.tar.gz", [tarfile.TarInfo("../../../evil.png")])
    outer = _zip(tmp_path / "outer.zip", {"masks.tar.gz": inner.read_bytes()})
    out = safe_extract(outer, tmp_path / "out", progress=False)
    with pytest.raises(UnsafeArchiveError, match="evil.png"):
        extract_nested(out, progress=False)


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_text("not really")
    with pytest.raises(BadArchiveError, match="not a readable archive: neither zip nor tar"):
        safe_extract(tmp_path / "x.zip", tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------------------------
# From download to prepared folder, with the local server standing in for the dataset host
# ----------------------------------------------------------------------------------------------


def test_download_then_prepare_end_to_end(server, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from _paths import BUSI_SAMPLE, busi_items

    from data_download import busi, prepare, registry

    archive = Path(shutil.make_archive(str(tmp_path / "Dataset_BUSI"), "zip", BUSI_SAMPLE))
    monkeypatch.setattr(sys.modules[__name__], "PAYLOAD", archive.read_bytes())
    local = dataclasses.replace(
        busi.RECIPE,
        remote_files=lambda: [
            registry.Remote(
                "Dataset_BUSI.zip",
                (f"{server.url}/Dataset_BUSI.zip",),
                sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
            )
        ],
    )
    monkeypatch.setattr(registry, "recipes", lambda: {"busi": local})
    server.drop_after = 50_000  # and the connection breaks once on the way
    out = prepare("busi", tmp_path / "data", progress=False, workers=1)
    assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(busi_items())
    assert json.loads((out / "info.json").read_text())["source"].startswith(server.url)
    assert list((tmp_path / "data" / ".downloads").iterdir()) == []  # archive removed


def test_dataverse_listing_becomes_verified_downloads():
    from data_download.ham10000 import WANTED, remote_files_from_listing

    files = [
        {"dataFile": {"id": 100 + i, "filename": name, "md5": f"{i:032x}"}}
        for i, name in enumerate(WANTED)
    ]
    files.append(
        {
            "dataFile": {
                "id": 7,
                "filename": "HAM10000_metadata.tab",
                "originalFileName": "HAM10000_metadata.csv",
                "md5": "f" * 32,
            }
        }
    )
    remotes = remote_files_from_listing({"data": {"latestVersion": {"files": files}}})
    assert [r.filename for r in remotes] == [*WANTED, "HAM10000_metadata.csv"]
    assert remotes[0].urls == ("https://dataverse.harvard.edu/api/access/datafile/100",)
    assert remotes[2].md5 == f"{2:032x}" and not remotes[2].optional
    assert remotes[3].optional and remotes[3].urls[0].endswith("/7?format=original")
