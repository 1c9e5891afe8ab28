"""Tracking with query embeddings (vis/modeling/model.py ``frame_embeddings``, vis/modeling/build.py
``load_vis_model`` on an image checkpoint): each source's embeddings, the checkpoint deciding image vs VIS,
and the errors of a wrong combination."""
import math

import pytest
import torch

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import save_config
from queryinst.tracking import OnlineTracker
from queryinst.vis.config import AUTO_EMBEDDING, EMBEDDINGS
from queryinst.vis.inference import track_frames
from queryinst.vis.modeling.build import build_queryinst_vis, load_vis_config, load_vis_model
from support.repo import tiny_config


def _image_checkpoint(tmp_path, **cfg_changes):
    torch.manual_seed(0)
    cfg = tiny_config(narrow=True, num_stages=2, num_proposals=8)
    cfg.data.test_min_size, cfg.data.test_max_size = 64, 96
    for key, value in cfg_changes.items():
        setattr(cfg.run, key, value)
    model = build_queryinst(cfg)
    path = tmp_path / "image.pth"
    save_checkpoint(str(path), model, None, None, 1, 10, cfg, extra={"class_names": ["cat", "dog", "bird"]})
    save_config(cfg, str(tmp_path / "image.yaml"))
    return path, model


def _vis_model(embedding: str = "auto"):
    torch.manual_seed(0)
    cfg = tiny_config(vis=True, narrow=True, num_stages=2, track_dim=16)
    cfg.inference.embedding = embedding
    cfg.inference.score_threshold = 0.0
    return build_queryinst_vis(cfg).eval()


def test_each_source_gives_the_embedding_it_names():
    model = _vis_model()
    q, a = torch.randn(5, 32), torch.randn(5, 32)
    box_feats = torch.randn(5, 32, 7, 7)
    model.set_embedding("track_head")
    assert torch.equal(model.frame_embeddings(q, a, lambda: box_feats), model.track_head(box_feats))
    for source, feats in (("queries", q), ("attention", a)):
        model.set_embedding(source, 10.0)
        emb = model.frame_embeddings(q, a, lambda: pytest.fail("the track head must not run"))
        # the tracker's dot product of two detections is scale x the cosine of their features
        cos = torch.nn.functional.cosine_similarity(feats[0], feats[1], dim=0)
        assert torch.allclose(emb[0] @ emb[1], 10.0 * cos, atol=1e-5)
        assert torch.allclose(emb.norm(dim=1), torch.full((5,), math.sqrt(10.0)), atol=1e-5)
    model.set_embedding("none")
    assert not model.frame_embeddings(q, a, lambda: box_feats).any()


def test_wrong_sources_are_refused():
    model = _vis_model()
    with pytest.raises(ValueError, match="one of"):
        model.set_embedding("track")
    with pytest.raises(ValueError, match="> 0"):
        model.set_embedding("queries", 0.0)
    model.track_head = None
    with pytest.raises(ValueError, match="no track head"):
        model.set_embedding("track_head")


def test_auto_picks_the_measured_source():
    assert _vis_model().embedding == AUTO_EMBEDDING["vis"]
    assert set(AUTO_EMBEDDING.values()) <= set(EMBEDDINGS) and AUTO_EMBEDDING["image"] != "track_head"


def test_an_image_checkpoint_tracks_with_its_query_embeddings(tmp_path):
    path, image_model = _image_checkpoint(tmp_path, device="cpu")
    cfg, model, names, cat_ids = load_vis_model(None, path, ["inference.score_threshold=0.0"])
    assert model.track_head is None and model.embedding == AUTO_EMBEDDING["image"]
    assert names == ["cat", "dog", "bird"] and cat_ids == [1, 2, 3]
    assert cfg.model.num_proposals == 8 and (cfg.data.test_min_size, cfg.data.test_max_size) == (64, 96)
    # the same detector weights as the image model
    state = image_model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.detector.state_dict().items() if "proposals" in k)
    torch.manual_seed(1)
    frames = [(torch.rand(60, 90, 3) * 255).byte().numpy() for _ in range(3)]
    results = list(track_frames(model, OnlineTracker(cfg.tracker), frames, 64, 96))
    # score threshold 0: each of the 8 queries is detected and tracked; the first frame opens ids 1..8
    assert [len(r.track_ids) for r in results] == [8, 8, 8]
    assert sorted(results[0].track_ids) == list(range(1, 9))
    # its own image YAML works as --config too; a VIS YAML or the track head do not
    cfg2, image_cfg = load_vis_config(tmp_path / "image.yaml", path)
    assert image_cfg is not None and cfg2.model.num_proposals == 8
    with pytest.raises(ValueError, match="no track head"):
        load_vis_model(None, path, ["inference.embedding=track_head"])
    vis_yaml = tmp_path / "vis.yaml"
    save_config(tiny_config(vis=True, narrow=True, num_stages=2), str(vis_yaml))
    with pytest.raises(ValueError, match="image QueryInst checkpoint .* VIS config"):
        load_vis_model(vis_yaml, path)


def test_a_vis_checkpoint_is_recognised_without_its_config(tmp_path):
    model = _vis_model()
    cfg = tiny_config(vis=True, narrow=True, num_stages=2, track_dim=16)
    save_checkpoint(str(tmp_path / "vis.pth"), model, None, None, 1, 10, cfg)
    loaded_cfg, loaded, _, _ = load_vis_model(None, tmp_path / "vis.pth", ["inference.embedding=queries"], "cpu")
    assert loaded.track_head is not None and loaded.embedding == "queries"
    image_yaml = tmp_path / "image.yaml"
    save_config(tiny_config(narrow=True, num_stages=2), str(image_yaml))
    with pytest.raises(ValueError, match="QueryInst-VIS checkpoint given with an image config"):
        load_vis_model(image_yaml, tmp_path / "vis.pth")


def test_checkpoints_without_config_or_unconverted_are_named(tmp_path):
    path, model = _image_checkpoint(tmp_path)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    with pytest.raises(ValueError, match="bare.pth: the checkpoint stores no config; give --config"):
        load_vis_model(None, tmp_path / "bare.pth")
    cfg, loaded, _, _ = load_vis_model(tmp_path / "image.yaml", tmp_path / "bare.pth", device="cpu")
    assert loaded.track_head is None
    torch.save({"state_dict": {"roi_head.bbox_head.0.fc_cls.weight": torch.zeros(3, 4)}}, tmp_path / "mm.pth")
    with pytest.raises(ValueError, match="mm.pth: an mmdetection checkpoint: convert it first"):
        load_vis_model(None, tmp_path / "mm.pth")
    with pytest.raises(ValueError, match="--config needs --weights"):
        load_vis_model("c.yaml", None)
