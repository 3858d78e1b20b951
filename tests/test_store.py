"""Artifact store: the manifest is the commit point, so a crash at any step keeps the last good build."""
from __future__ import annotations

import json
import os

import pytest

from recommender import store as store_module
from recommender.errors import ArtifactError
from recommender.store import ArtifactStore


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
