"""Tracker oracle: GT detections through the real tracker + aggregation + writer + evaluator."""
import pytest

from queryinst.tracking.config import TrackerConfig
from queryinst.vis.data.synthetic import VideoSceneOptions, make_ytvis_dataset
from queryinst.vis.data.ytvis import YTVISDataset
from queryinst.vis.eval.oracle import oracle_records
from queryinst.vis.eval.submission import validate_results
from queryinst.vis.eval.ytvis_eval import evaluate_ytvis, load_ytvis_gt


@pytest.fixture(scope="module")
def fast_motion_split(tmp_path_factory):
    # annotated every 5th frame, objects moving about their own size between annotated frames
    files = make_ytvis_dataset(tmp_path_factory.mktemp("oracle") / "split", num_videos=12, length=10, height=96,
                               width=160, seed=3, annotate_every=5, options=VideoSceneOptions(speed=0.2))
    return YTVISDataset(files.json_path, files.frames_root), load_ytvis_gt(files.json_path)


def test_identity_embeddings_track_perfect_detections(fast_motion_split):
    split, gt = fast_motion_split
    records = oracle_records(split, TrackerConfig(mode="hungarian"), identity=True)
    validate_results(records, [{"id": v.id, "length": v.length, "height": v.height, "width": v.width}
                               for v in split.videos], split.cat_ids)
    assert evaluate_ytvis(gt, records)["AP"] >= 0.95


def test_embeddings_close_the_gap_left_by_motion(fast_motion_split):
    split, gt = fast_motion_split
    for mode in ("hungarian", "masktrack"):
        with_id = evaluate_ytvis(gt, oracle_records(split, TrackerConfig(mode=mode), identity=True))["AP"]
        without = evaluate_ytvis(gt, oracle_records(split, TrackerConfig(mode=mode), identity=False))["AP"]
        assert with_id > without, mode
