"""Artifact store: the manifest is the commit point, so a crash at any step keeps the last good build."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender import owners
from recommender import store as store_module
from recommender.errors import ArtifactError, BuildRunningError
from recommender.store import ArtifactStore

REPO = Path(__file__).resolve().parents[1]


def write_version(store: ArtifactStore, text: str, **meta) -> None:
    with store.write("index", {"model": "m1", **meta}) as tmp:
        (tmp / "data.txt").write_text(text)


def read(store: ArtifactStore, **expect) -> str:
    return (store.load("index", expect).path / "data.txt").read_text()


def test_write_then_load_round_trip(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1", data="d1", counts={"articles": 3})
    art = store.load("index", {"model": "m1", "data": "d1"})
    assert (art.path / "data.txt").read_text() == "v1"
    assert art.meta["counts"] == {"articles": 3}
    manifest = json.loads((tmp_path / "index.json").read_text())
    assert manifest["versions"]["faiss-cpu"] and manifest["built_at"]
    write_version(store, "v2", data="d1")
    assert read(store, model="m1") == "v2"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # the old version is gone


def test_exception_inside_write_keeps_previous(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "good")
    with pytest.raises(RuntimeError):
        with store.write("index", {"model": "m1"}) as tmp:
            (tmp / "data.txt").write_text("half")
            raise RuntimeError("killed mid-build")
    assert read(store) == "good"
    assert not list(tmp_path.glob(".tmp-*"))


def test_crash_between_folder_rename_and_manifest_keeps_previous(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    write_version(store, "good")

    def crash(path, payload):
        raise KeyboardInterrupt("power cut before the manifest was renamed")

    monkeypatch.setattr(store_module, "_write_json_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        write_version(store, "new")
    monkeypatch.undo()
    assert read(store) == "good"  # the orphaned new folder is not referenced
    write_version(store, "newer")  # and the next build resumes and cleans up
    assert read(store) == "newer"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


def test_crash_during_manifest_rename_keeps_previous(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    write_version(store, "good")
    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    with pytest.raises(OSError):
        write_version(store, "new")
    monkeypatch.undo()
    assert read(store) == "good"


def test_mismatch_is_refused_with_what_differs_and_how_to_rebuild(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1", data="shop@abc")
    with pytest.raises(ArtifactError) as err:
        store.load("index", {"model": "ViT-B-16 hf-hub:Marqo/marqo-fashionCLIP", "data": "shop@abc"})
    message = str(err.value)
    assert "model: built with m1, now ViT-B-16 hf-hub:Marqo/marqo-fashionCLIP" in message
    assert "data" not in message.split("does not match:")[1].split("Rebuild")[0]
    assert "python -m recommender build" in message
    assert store.is_current("index", {"data": "shop@abc"})
    with pytest.raises(ArtifactError, match="'other' has not been built"):
        store.load("other")


def test_unreadable_manifest_is_a_clear_error(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1")
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        store.load("index")


# --- damage: sizes checked on every load, checksums by `repair` (run by build) -----------------------


def test_truncated_file_is_refused_naming_the_artifact_file_and_rebuild_command(tmp_path):
    store = ArtifactStore(tmp_path, rebuild_hint="python -m recommender build --data shop")
    write_version(store, "v1-contents")
    data = store.load("index").path / "data.txt"
    data.write_text("v1")
    with pytest.raises(ArtifactError) as err:
        store.load("index")
    assert str(err.value) == (
        f"artifact 'index' in {tmp_path} is damaged: data.txt is 2 bytes, 11 when built. "
        f"Rebuild it with `python -m recommender build --data shop`."
    )
    assert not store.is_current("index", {"model": "m1"})  # so a build makes it again


def test_repair_drops_damaged_artifacts_by_checksum_and_keeps_whole_ones(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "same-size")
    with store.write("other", {"model": "m1"}) as tmp:
        (tmp / "data.txt").write_text("fine")
    (store.load("index").path / "data.txt").write_text("SAME-SIZE")  # same size, other bytes
    assert read(store) == "SAME-SIZE"  # loading checks sizes only
    log = []
    assert store.repair(log=log.append) == ["index"]
    assert log == ["artifact 'index' is damaged (data.txt has other contents than when built (checksum)); rebuilding it"]
    assert store.manifest("index") is None and store.load("other")
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [store.manifest("other")["folder"]]


def test_empty_manifest_is_an_artifact_error_and_repair_drops_it(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1")
    (tmp_path / "index.json").write_text("")
    with pytest.raises(ArtifactError, match=r"artifact 'index' has an unreadable manifest index.json .*\(empty file\); run `python -m recommender build`"):
        store.load("index")
    assert store.repair(log=lambda m: None) == ["index"]
    write_version(store, "v2")
    assert read(store) == "v2"


# --- two processes: the build lock and temp folders of live / dead writers -----------------------------

HOLDER = """
import sys, time
from recommender.store import ArtifactStore
store = ArtifactStore(sys.argv[1])
with store.lock():
    with store.write("index", {"model": "m1"}) as tmp:
        (tmp / "data.txt").write_text("half written")
        print("ready", flush=True)
        time.sleep(120)
"""


def test_lock_and_temp_folder_of_a_live_writer_are_respected_until_it_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        store = ArtifactStore(tmp_path)
        with pytest.raises(BuildRunningError) as err:
            with store.lock(wait=0):
                pass
        assert str(err.value).startswith(f"a build is already running on {tmp_path} (pid {holder.pid} on ")
        assert str(err.value).endswith("); try again when it has finished")
        messages = []
        with pytest.raises(BuildRunningError, match="after waiting 0.2 s"):
            with store.lock(wait=0.2, notify=messages.append):
                pass
        assert messages[0].endswith("waiting for it to finish") and f"pid {holder.pid}" in messages[0]
        assert store.build_running()  # what a server asks before opening a newer build

        [theirs] = tmp_path.glob(".tmp-index-*")
        assert f"-{holder.pid}@" in theirs.name
        write_version(store, "mine")  # a write beside a live writer leaves its folder alone
        assert theirs.is_dir() and read(store) == "mine"
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    assert not store.build_running()  # the killed holder's note is left, naming a dead process
    with store.lock(wait=10):  # the OS released the dead holder's lock; its temp folder is abandoned
        assert not theirs.exists()
    assert read(store) == "mine" and not store.build_running()


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "chunk.npy"
    with store_module.atomic_write(target, "w") as handle:
        handle.write("old")
    with pytest.raises(RuntimeError):
        with store_module.atomic_write(target, "w") as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["chunk.npy"]


def version_folders(store: ArtifactStore) -> list[str]:
    return sorted(p.name for p in store.root.glob("index-*") if p.is_dir())


def test_version_folders_sort_by_when_they_were_written(tmp_path):
    store = ArtifactStore(tmp_path)
    for text in ("v1", "v2", "v3"):
        write_version(store, text)
    (only,) = version_folders(store)
    assert only == store.manifest("index")["folder"] and only.startswith("index-20")
    names = []
    reader = ArtifactStore(tmp_path, reader=True)
    for text in ("v4", "v5"):
        reader.load("index")
        write_version(store, text)
        names.append(store.manifest("index")["folder"])
    assert names == sorted(names)  # a reader sees which version is newest by its name


def test_a_version_a_reader_holds_is_kept_until_released(tmp_path):
    store, reader = ArtifactStore(tmp_path), ArtifactStore(tmp_path, reader=True)
    write_version(store, "v1")
    held = reader.load("index")
    write_version(store, "v2")
    write_version(store, "v3")
    assert (held.path / "data.txt").read_text() == "v1"  # the serving engine's files are still there
    assert len(version_folders(store)) == 2  # v1 (leased) and v3; v2 went at once
    assert store.leases.holders(held.path.name) == [owners.owner_tag()]
    reader.release()
    write_version(store, "v4")
    assert version_folders(store) == [store.manifest("index")["folder"]] and read(store) == "v4"


def test_a_dead_readers_lease_holds_nothing(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1")
    folder = store.manifest("index")["folder"]
    script = (f"from recommender.store import ArtifactStore\n"
              f"ArtifactStore({str(tmp_path)!r}, reader=True).load('index')\n"
              "import os; os._exit(0)\n")  # no atexit: as if killed
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    assert len(list((tmp_path / owners.READERS_DIR).glob(f"{folder}--*"))) == 1
    assert store.leases.holders(folder) == []
    write_version(store, "v2")
    assert version_folders(store) == [store.manifest("index")["folder"]]


def test_versions_named_by_earlier_releases_still_load(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1")
    manifest = store.manifest("index")
    old_name = f"index-{owners.owner_tag()}-0123456789ab"
    os.rename(tmp_path / manifest["folder"], tmp_path / old_name)
    (tmp_path / "index.json").write_text(json.dumps({**manifest, "folder": old_name}))
    assert read(store) == "v1"
    write_version(store, "v2")
    assert read(store) == "v2" and version_folders(store) == [store.manifest("index")["folder"]]


def test_build_id_changes_when_an_artifact_is_rebuilt(tmp_path):
    store = ArtifactStore(tmp_path)
    write_version(store, "v1")
    first = store.build_id()
    assert first == store.build_id() and first.startswith("index:index-")
    write_version(store, "v2")
    assert store.build_id() != first
