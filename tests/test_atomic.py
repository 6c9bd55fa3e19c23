"""Atomic files and staged folders (wavegms.utils.atomic): what a reader or the next run finds
after a write that finished, failed, or was killed at any point."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wavegms.utils import atomic
from wavegms.utils.atomic import (
    commit_folder,
    current_umask,
    recover_folder,
    staged_file,
    staging_folder,
)


def _write_files(files: dict[str, str]):  # noqa: ANN202 - a write() for commit_folder
    def write(folder: Path) -> None:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)

    return write


def _contents(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_current_umask_reads_the_umask_set_after_import():
    previous = os.umask(0o027)
    try:
        assert current_umask() == 0o027
    finally:
        os.umask(previous)


def test_a_committed_folder_has_its_content_and_ordinary_permissions(tmp_path, umask_022):
    target = tmp_path / "parent" / "data"
    assert commit_folder(target, _write_files({"a.txt": "1", "sub/b.txt": "2"})) == target
    assert _contents(target) == {"a.txt": "1", "sub/b.txt": "2"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's 0700
    assert stat.S_IMODE((target / "sub").stat().st_mode) == 0o755
    assert [p.name for p in target.parent.iterdir()] == ["data"]  # no staging folder left


def test_replacing_a_folder_swaps_it_whole(tmp_path):
    target = tmp_path / "data"
    commit_folder(target, _write_files({"old.txt": "old", "both.txt": "old"}))
    seen = []

    def write(folder: Path) -> None:
        seen.append(_contents(target))  # a reader, while the new version is being written
        _write_files({"both.txt": "new"})(folder)

    commit_folder(target, write)
    assert seen == [{"old.txt": "old", "both.txt": "old"}]
    assert _contents(target) == {"both.txt": "new"}  # nothing of the old version is mixed in
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_replace_false_refuses_an_existing_folder(tmp_path):
    target = tmp_path / "data"
    commit_folder(target, _write_files({"a.txt": "mine"}))
    with pytest.raises(FileExistsError, match=f"{target} already exists"):
        commit_folder(target, _write_files({"a.txt": "other"}), replace=False)
    assert _contents(target) == {"a.txt": "mine"}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
@pytest.mark.parametrize("existing", [True, False])
def test_a_write_that_fails_leaves_the_previous_folder(tmp_path, error, existing):
    target = tmp_path / "data"
    if existing:
        commit_folder(target, _write_files({"a.txt": "previous"}))

    def write(folder: Path) -> None:
        (folder / "a.txt").write_text("half")
        raise error  # Ctrl-C, a full disk, ... mid-way

    with pytest.raises(error):
        commit_folder(target, write)
    assert [p.name for p in tmp_path.iterdir()] == (["data"] if existing else [])
    if existing:
        assert _contents(target) == {"a.txt": "previous"}


def test_a_hard_killed_writes_stage_is_removed_and_the_folder_kept(tmp_path):
    target = tmp_path / "data"
    commit_folder(target, _write_files({"a.txt": "previous"}))
    partial = staging_folder(target, "partial")  # what kill -9 during write() leaves
    partial.mkdir()
    (partial / "a.txt").write_text("half")
    assert recover_folder(target) == [partial]
    assert _contents(target) == {"a.txt": "previous"}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    partial.mkdir()  # and commit_folder itself tidies first
    commit_folder(target, _write_files({"a.txt": "new"}))
    assert _contents(target) == {"a.txt": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_kill_between_the_renames_is_finished_by_recover(tmp_path, monkeypatch):
    target = tmp_path / "data"
    commit_folder(target, _write_files({"a.txt": "previous"}))
    replace = os.replace

    def killed(src, dst):  # noqa: ANN001, ANN202
        if Path(src).name == ".data.ready":
            raise KeyboardInterrupt  # stands in for kill -9 once data/ was moved aside
        return replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        commit_folder(target, _write_files({"a.txt": "new"}))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.old", ".data.ready"]

    assert recover_folder(target) == []  # nothing to delete: the new version is swapped in
    assert _contents(target) == {"a.txt": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_without_a_complete_new_version_the_previous_one_is_put_back(tmp_path):
    target = tmp_path / "data"
    old = staging_folder(target, "old")  # moved aside; the new version never became ready
    old.mkdir()
    (old / "a.txt").write_text("previous")
    partial = staging_folder(target, "partial")
    partial.mkdir()
    assert recover_folder(target) == [partial]
    assert _contents(target) == {"a.txt": "previous"}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_staged_file_gets_ordinary_permissions_and_is_removed_on_error(tmp_path, umask_022):
    path = tmp_path / "out" / "notebook.ipynb"
    with staged_file(path, suffix=".ipynb") as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".notebook.ipynb.")
        assert tmp.suffix == ".ipynb"
        tmp.write_text("done")
        assert not path.exists()  # in place only once the block ends
    assert path.read_text() == "done"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    with pytest.raises(KeyboardInterrupt), staged_file(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "done"
    assert [p.name for p in path.parent.iterdir()] == ["notebook.ipynb"]
