"""Model config validation after merging: widths that cannot work together are one clear ConfigError."""
import pytest

from queryinst.image.config import ConfigError, load_config


@pytest.mark.parametrize("overrides, message", [
    (["model.hidden_dim=128"], r"hidden_dim \(128\) must equal fpn_channels \(256\)"),
    (["model.hidden_dim=100", "model.fpn_channels=100"], r"divisible by num_heads \(8\)"),
])
def test_incompatible_widths_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_matching_widths_are_accepted():
    cfg = load_config(None, ["model.hidden_dim=128", "model.fpn_channels=128"])
    assert cfg.model.hidden_dim == cfg.model.fpn_channels == 128
