import pytest

from wavegms import TinyVAEUnavailableError, load_tiny_vae
from wavegms.tiny_vae import TAESD_ENV


def test_loads_frozen_from_the_environment_folder(taesd_dir, monkeypatch):
    assert (taesd_dir / "config.json").is_file()  # a folder, not a hub id
    monkeypatch.setenv(TAESD_ENV, str(taesd_dir))
    vae = load_tiny_vae()
    assert not vae.training
    assert all(not p.requires_grad for p in vae.parameters())
    assert vae.config.latent_channels == 4 and vae.config.scaling_factor == 1.0


def test_a_bad_path_names_the_source_and_the_fix(tmp_path):
    with pytest.raises(TinyVAEUnavailableError) as error:
        load_tiny_vae(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert TAESD_ENV in message and "madebyollin/taesd" in message


def test_an_unreachable_hub_id_says_how_to_use_a_local_copy(monkeypatch, tmp_path):
    # Offline with an empty cache: the hub id cannot be resolved.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(TinyVAEUnavailableError) as error:
        load_tiny_vae("madebyollin/taesd-does-not-exist")
    assert "madebyollin/taesd-does-not-exist" in str(error.value)
    assert TAESD_ENV in str(error.value)
