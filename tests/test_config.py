"""Settings: every environment variable validated with a message naming it and what is allowed."""
from __future__ import annotations

import pytest

from recommender.config import ARTIFACTS_ROOT, Settings
from recommender.errors import ConfigError

BAD_SETTINGS = [
    ("LOOKBOOK_TRAIN_EPOCHS", "abc", "LOOKBOOK_TRAIN_EPOCHS='abc' is not allowed: a whole number of epochs from 1 to 10,000"),
    ("LOOKBOOK_TRAIN_EPOCHS", "0", "LOOKBOOK_TRAIN_EPOCHS='0' is not allowed: a whole number of epochs from 1 to 10,000"),
    ("LOOKBOOK_DEVICE", "tpu", "LOOKBOOK_DEVICE='tpu' is not allowed: use cpu, cuda, cuda:N or mps"),
    ("LOOKBOOK_NO_FALLBACK", "maybe", "LOOKBOOK_NO_FALLBACK='maybe' is not allowed: use 1/true/yes/on or 0/false/no/off"),
]


@pytest.mark.parametrize("variable, value, message", BAD_SETTINGS)
def test_bad_environment_values_name_the_variable_and_what_is_allowed(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        Settings()
    assert str(err.value) == message


def test_missing_data_folder_and_file_paths_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKBOOK_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"LOOKBOOK_DATA / --data: the dataset folder .*nowhere does not exist"):
        Settings()
    monkeypatch.delenv("LOOKBOOK_DATA")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a dataset folder"):
        Settings(data_dir=tmp_path / "file")
    with pytest.raises(ConfigError, match="LOOKBOOK_ARTIFACTS / --artifacts: .* is a file, not a folder"):
        Settings(data_dir=tmp_path, artifacts_dir=tmp_path / "file")
    with pytest.raises(ConfigError, match="LOOKBOOK_DEVICE='gpu'"):
        Settings(data_dir=tmp_path).with_(device="gpu")


def test_good_values_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKBOOK_TRAIN_EPOCHS", " 3 ")
    monkeypatch.setenv("LOOKBOOK_DEVICE", "cuda:1")
    monkeypatch.setenv("LOOKBOOK_NO_FALLBACK", "Yes")
    settings = Settings(data_dir=tmp_path)
    assert (settings.train_epochs, settings.device, settings.fallback) == (3, "cuda:1", False)


def test_two_data_folders_with_one_name_get_their_own_artifacts(tmp_path):
    first, second = tmp_path / "a" / "hm", tmp_path / "b" / "hm"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    one, two = Settings(data_dir=first).artifacts_dir, Settings(data_dir=second).artifacts_dir
    assert one != two
    assert one.parent == two.parent == ARTIFACTS_ROOT.resolve()
    assert one.name.startswith("hm-") and len(one.name) == len("hm-") + 8  # readable: folder name + short hash
    assert Settings(data_dir=tmp_path / "a" / ".." / "a" / "hm").artifacts_dir == one  # same folder, same key
