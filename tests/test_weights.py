"""queryinst/weights.py: weights by name, against a local HTTP server on 127.0.0.1 (tests/support/http_files.py).

The served mmdetection file is generated: a tiny 80-class QueryInst (ResNet-18, 5 queries, 2 stages) saved
under mmdetection's names as ``{"meta", "state_dict"}``, the layout of the model zoo's files. Every test
has its own cache (``$QUERYINST_HOME``) and registry (``$QUERYINST_REGISTRY``); no test reaches the internet.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from queryinst.image.build import build_queryinst
from queryinst.image.checkpoint import save_checkpoint
from queryinst.image.config import load_config, save_config
from queryinst.image.mmdet_import import COCO_CLASSES, to_mmdet_state_dict
from queryinst.weights import WeightsError, load_registry, resolve_weights
from support import repo
from support.http_files import FileServer, closed_port_url

SHIPPED = ("queryinst_r50_1x_coco", "queryinst_r50_ms3x_coco", "queryinst_r50_300q_crop_ms3x_coco",
           "queryinst_r101_ms3x_coco", "queryinst_r101_300q_crop_ms3x_coco")
PAYLOAD = bytes(range(256)) * 2048  # 512 KiB that no test needs to load: the failure cases
TINY_FILE = "/queryinst_tiny_coco_20260101-0000.pth"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_files(home: Path) -> list[str]:
    """Every file in the cache but the (empty) lock files, as paths relative to it."""
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*")
                  if p.is_file() and p.parent.name != "locks")


def entry(url: str, data: bytes, **fields) -> dict:
    """A registry entry for ``data`` served at ``url``: mmdetection format, COCO classes, the 8-hex prefix
    of its sha256 (as mmdetection publishes it)."""
    return {"url": url, "sha256": sha256(data)[:8], "format": "mmdetection", "task": "image", "classes": "coco",
            **fields}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty cache of this test's own, and no registry from the environment."""
    monkeypatch.setenv("QUERYINST_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("QUERYINST_REGISTRY", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def register(tmp_path, monkeypatch, home):
    """``register(name=entry, ...)`` writes a registry YAML and points $QUERYINST_REGISTRY at it."""
    def write(**entries) -> Path:
        path = tmp_path / "registry.yaml"
        path.write_text(yaml.safe_dump(entries))
        monkeypatch.setenv("QUERYINST_REGISTRY", str(path))
        return path
    return write


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(mmdetection state_dict, the bytes of its file, a config file the weights fit). The config has 4
    attention heads, which the weights cannot tell (the converter's default is 8), and small test sizes."""
    folder = tmp_path_factory.mktemp("tiny_mmdet")
    cfg = repo.tiny_config(narrow=True, num_classes=80, num_proposals=5, num_stages=2)
    cfg.data.test_min_size, cfg.data.test_max_size = 64, 96
    torch.manual_seed(0)
    state = to_mmdet_state_dict(build_queryinst(cfg).state_dict())
    buffer = io.BytesIO()
    torch.save({"meta": {"mmdet_version": "3.3.0", "epoch": 12}, "state_dict": state}, buffer)
    save_config(cfg, str(folder / "tiny.yaml"))
    return state, buffer.getvalue(), folder / "tiny.yaml"


@pytest.fixture
def tiny_coco(tiny, server, register):
    """The tiny mmdetection file served and registered as ``tiny_coco``; returns (state, data)."""
    state, data, config = tiny
    server.files[TINY_FILE] = data
    register(tiny_coco=entry(server.url(TINY_FILE), data, config=str(config)))
    return state, data


# --------------------------------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------------------------------
def test_a_path_comes_back_unchanged(tmp_path, home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my_model").write_bytes(b"a file named like a name is a file")
    for given in ("my_model", "work_dirs/x/last.pth", "missing.pth", str(tmp_path / "my_model")):
        assert resolve_weights(given) == given
    assert resolve_weights(Path("a") / "b.pth") == os.path.join("a", "b.pth")
    assert not home.exists()


def test_an_unknown_name_lists_the_known_ones_and_the_closest(register, server, home):
    register(own_release=entry(server.url("/x.pth"), PAYLOAD))
    with pytest.raises(WeightsError) as caught:
        resolve_weights("queryinst_r50_3x_coco")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert "'queryinst_r50_3x_coco' is neither a checkpoint file nor a registered weights name" in message
    assert "did you mean 'queryinst_r50_ms3x_coco'?" in message
    assert all(name in message for name in (*SHIPPED, "own_release"))
    with pytest.raises(WeightsError, match="known names") as caught:
        resolve_weights("zzz")
    assert "did you mean" not in str(caught.value)
    assert server.requests == [] and not home.exists()


def test_the_shipped_registry_holds_mmdetections_five_queryinst_coco_models(home):
    entries = load_registry()
    assert tuple(entries) == SHIPPED
    for name, e in entries.items():
        folder = e.file_name.rsplit("_2021", 1)[0]  # mmdetection: <config name>/<config name>_<date>-<hash>.pth
        assert e.url == f"https://download.openmmlab.com/mmdetection/v2.0/queryinst/{folder}/{e.file_name}", name
        assert len(e.sha256) == 8 and e.file_name.endswith(f"-{e.sha256}.pth"), name
        assert (e.format, e.task, e.classes, e.size) == ("mmdetection", "image", "coco", None), name
        assert len(e.class_names()) == 80 and e.box_ap > e.mask_ap > 30, name
        # our config of the same name fits what the mmdetection file name says
        assert Path(e.config).stem == name
        cfg = load_config(str(e.config_path()))
        depth = "101" if "_r101_" in folder else "50"
        assert f"_r{depth}_" in name and cfg.model.backbone == f"resnet{depth}", name
        assert cfg.model.num_proposals == (300 if "300_proposals" in folder else 100)
        assert cfg.solver.epochs == (12 if folder.endswith("_1x_coco") else 36), name


def test_the_model_zoo_page_lists_every_registered_name(home):
    text = (repo.REPO_ROOT / "docs" / "model_zoo.md").read_text(encoding="utf-8")
    for name, e in load_registry().items():
        rows = [line for line in text.splitlines() if line.startswith("|") and f"`{name}`" in line]
        assert len(rows) == 1, f"docs/model_zoo.md: no table row for `{name}`"
        cells = [c.strip() for c in rows[0].split("|")]
        assert f"{e.box_ap:.1f}" in cells and f"{e.mask_ap:.1f}" in cells and e.sha256 in rows[0], name


@pytest.mark.parametrize("change,problem", [
    ({"url": "ftp://host/x.pth"}, "url must start with https://, http:// or file://"),
    ({"sha256": "5A8F"}, "sha256 must be 8 to 64 lowercase hex digits"),
    ({"format": "detectron2"}, "format must be one of mmdetection, queryinst"),
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"classes": []}, "classes must be 'coco' or a list of names"),
])
def test_a_malformed_registry_entry_is_one_error_naming_the_file(register, change, problem):
    path = register(broken={**entry("https://example.org/x.pth", PAYLOAD), **change})
    with pytest.raises(ValueError) as caught:
        resolve_weights("broken")
    message = str(caught.value)
    assert message.startswith(f"{path}: weights 'broken': ") and problem in message and "\n" not in message


def test_a_missing_registry_file_is_named(monkeypatch, home, tmp_path):
    monkeypatch.setenv("QUERYINST_REGISTRY", str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match=r"absent.yaml \(from \$QUERYINST_REGISTRY\)"):
        resolve_weights("queryinst_r50_1x_coco")


# --------------------------------------------------------------------------------------------------
# Download, conversion, cache
# --------------------------------------------------------------------------------------------------
def test_first_use_downloads_and_converts_then_the_cache_answers(tiny_coco, server, home):
    state, data = tiny_coco
    path = resolve_weights("tiny_coco", progress=False)
    expected = f"checkpoints/tiny_coco-{sha256(data)[:8]}.pth"
    assert path == str(home / expected)
    assert server.requests == [TINY_FILE]
    assert cache_files(home) == [expected]  # the mmdetection file is deleted once converted; no temporary left
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert stored["extra"]["class_names"] == list(COCO_CLASSES)
    assert stored["extra"]["source"] == {"format": "mmdetection", "file": TINY_FILE[1:], "mmdet_version": "3.3.0",
                                         "name": "tiny_coco", "url": server.url(TINY_FILE), "sha256": sha256(data)[:8]}
    assert stored["config"]["model"]["num_heads"] == 4  # the registry's config was used
    back = to_mmdet_state_dict(stored["model"])  # lossless: every tensor of the served file, bit for bit
    assert set(back) == set(state) and all(torch.equal(back[k], v) for k, v in state.items())

    modified = os.stat(path).st_mtime_ns
    assert resolve_weights("tiny_coco") == path
    assert server.requests == [TINY_FILE] and os.stat(path).st_mtime_ns == modified


def test_the_predictor_takes_a_name(tiny_coco, server, home):
    from queryinst import Predictor

    predictor = Predictor.from_pretrained("tiny_coco", device="cpu")
    assert predictor.class_names == list(COCO_CLASSES) and predictor.cfg.data.test_min_size == 64
    result = predictor(np.zeros((70, 110, 3), np.uint8))
    assert len(result) == 5 and set(result.class_names) <= set(COCO_CLASSES)
    assert Predictor.from_pretrained("tiny_coco", device="cpu").class_names == list(COCO_CLASSES)
    assert server.requests == [TINY_FILE]


def test_a_corrupted_byte_fails_the_hash_and_nothing_is_kept(register, server, home):
    corrupted = bytearray(PAYLOAD)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server.files["/model.pth"] = bytes(corrupted)
    register(model=entry(server.url("/model.pth"), PAYLOAD))
    with pytest.raises(WeightsError) as caught:
        resolve_weights("model", progress=False)
    message = str(caught.value)
    assert message == (f"model: the file downloaded from {server.url('/model.pth')} has sha256 "
                       f"{sha256(bytes(corrupted))[:16]}..., not the published {sha256(PAYLOAD)[:8]}...: the download "
                       "was cut short or the file on the server changed; nothing was kept in the cache (run again)")
    assert cache_files(home) == []


def test_a_download_cut_short_is_refused_and_nothing_is_kept(register, server, home):
    server.files["/model.pth"] = PAYLOAD
    server.cut_short.add("/model.pth")  # the full Content-Length announced, half the bytes sent
    register(model=entry(server.url("/model.pth"), PAYLOAD))
    with pytest.raises(WeightsError, match="the download was cut short"):
        resolve_weights("model", progress=False)
    assert server.requests == ["/model.pth"] and cache_files(home) == []


def test_no_network_is_one_line(register, home):
    url = closed_port_url()
    register(model=entry(url, PAYLOAD))
    with pytest.raises(WeightsError) as caught:
        resolve_weights("model", progress=False)
    assert str(caught.value) == f"cannot download model from {url}: Connection refused (no network?)"
    assert cache_files(home) == []


def test_an_http_error_is_one_line(register, server, home):
    register(model=entry(server.url("/gone.pth"), PAYLOAD))
    with pytest.raises(WeightsError) as caught:
        resolve_weights("model", progress=False)
    assert str(caught.value) == f"cannot download model from {server.url('/gone.pth')}: HTTP 404 Not Found"
    assert cache_files(home) == []


def test_a_full_disk_during_the_download_leaves_nothing(register, server, home, monkeypatch):
    import torch.hub

    class FullDisk:
        """A file of which the first write fails as on a full disk, after writing a few bytes."""

        def __init__(self, f) -> None:
            self.f, self.name = f, f.name

        def write(self, data: bytes) -> int:
            self.f.write(data[:100])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.f.close()

    # torch.hub opens its temporary file with the built-in open: give its module one of its own
    monkeypatch.setattr(torch.hub, "open", lambda *a, **k: FullDisk(builtins.open(*a, **k)), raising=False)
    server.files["/model.pth"] = PAYLOAD
    register(model=entry(server.url("/model.pth"), PAYLOAD))
    with pytest.raises(WeightsError) as caught:
        resolve_weights("model", progress=False)
    assert str(caught.value) == (f"cannot store model: no space left on the device of {home / 'downloads'}: free "
                                 "some space or set QUERYINST_HOME to a folder on another disk (nothing half-written "
                                 "was kept)")
    assert cache_files(home) == []


def test_a_full_disk_during_the_conversion_keeps_only_the_checked_download(tiny_coco, server, home, monkeypatch):
    _, data = tiny_coco

    def full_disk_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"the first bytes of a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", full_disk_save)
        with pytest.raises(WeightsError, match="cannot store tiny_coco: no space left on the device of .*checkpoints"):
            resolve_weights("tiny_coco", progress=False)
    download = f"downloads/{TINY_FILE[1:]}"
    assert cache_files(home) == [download]  # complete and checked: the next run converts it without downloading
    assert sha256((home / download).read_bytes()) == sha256(data)
    path = resolve_weights("tiny_coco", progress=False)
    assert server.requests == [TINY_FILE] and cache_files(home) == [Path(path).relative_to(home).as_posix()]


def test_a_known_size_is_checked_against_the_free_space_first(register, server, home):
    server.files["/model.pth"] = PAYLOAD
    register(model=entry(server.url("/model.pth"), PAYLOAD, size=2**60))
    needs = r"cannot store model: it needs about 2199023255552 MiB in .*cache, \d+ MiB are free"
    with pytest.raises(WeightsError, match=needs):
        resolve_weights("model", progress=False)
    assert server.requests == [] and cache_files(home) == []


def test_concurrent_processes_fetch_a_name_once(tiny_coco, server, home):
    results: list[str] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(resolve_weights("tiny_coco", progress=False))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(results) == 3 and len(set(results)) == 1
    assert server.requests == [TINY_FILE]


def test_a_checkpoint_of_ours_is_downloaded_as_is_and_loads(tmp_path, register, server, home):
    from queryinst import Predictor

    cfg = repo.tiny_config(narrow=True, num_proposals=4, num_stages=2)
    cfg.data.test_min_size, cfg.data.test_max_size = 64, 96
    save_checkpoint(str(tmp_path / "ours.pth"), build_queryinst(cfg), None, None, 1, 1, cfg,
                    extra={"class_names": ["cube", "ball", "cone"]})
    data = (tmp_path / "ours.pth").read_bytes()
    server.files["/ours.pth"] = data
    register(ours=entry(server.url("/ours.pth"), data, format="queryinst", classes=["cube", "ball", "cone"],
                        sha256=sha256(data)))  # the whole sha256 works too
    path = resolve_weights("ours", progress=False)
    assert Path(path).read_bytes() == data and cache_files(home) == [f"checkpoints/ours-{sha256(data)[:8]}.pth"]
    assert Predictor.from_pretrained("ours", device="cpu").class_names == ["cube", "ball", "cone"]
    assert server.requests == ["/ours.pth"]


# --------------------------------------------------------------------------------------------------
# The hooks: the VIS loader and the tools
# --------------------------------------------------------------------------------------------------
def test_the_vis_loader_and_video_tracker_take_a_name(tmp_path, register, server, home):
    from queryinst import VideoTracker
    from queryinst.vis.modeling.build import build_queryinst_vis, load_vis_model

    cfg = repo.tiny_config(vis=True, narrow=True, num_proposals=4, num_stages=2)
    cfg.data.test_min_size, cfg.data.test_max_size = 64, 96
    save_config(cfg, str(tmp_path / "vis.yaml"))
    save_checkpoint(str(tmp_path / "vis.pth"), build_queryinst_vis(cfg), None, None, 1, 1, cfg,
                    extra={"class_names": ["cube", "ball", "cone"]})
    data = (tmp_path / "vis.pth").read_bytes()
    server.files["/vis.pth"] = data
    register(tiny_vis=entry(server.url("/vis.pth"), data, format="queryinst", task="vis",
                            classes=["cube", "ball", "cone"]))
    _, model, names, _ = load_vis_model(str(tmp_path / "vis.yaml"), "tiny_vis", device="cpu")
    assert names == ["cube", "ball", "cone"] and not model.training
    tracker = VideoTracker.from_pretrained("tiny_vis", config=tmp_path / "vis.yaml", device="cpu")
    assert len(list(tracker.track([np.zeros((64, 96, 3), np.uint8)] * 2))) == 2
    assert server.requests == ["/vis.pth"]


def test_demo_image_takes_a_name_and_draws_coco_names(tiny_coco, server, home, tmp_path, load_tool, monkeypatch,
                                                      capsys):
    image = np.zeros((70, 110, 3), np.uint8)
    cv2.circle(image, (50, 35), 20, (255, 80, 0), -1)
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    drawn: list[str] = []
    put_text = cv2.putText

    def recording_put_text(canvas, text, *args, **kwargs):
        drawn.append(text)
        return put_text(canvas, text, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", recording_put_text)
    status = load_tool("demo_image").main(["--weights", "tiny_coco", "--input", str(tmp_path / "photo.png"),
                                           "--output", str(tmp_path / "out"), "--score-thr", "0", "--threads", "1"])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "photo.png").is_file()
    assert len(drawn) == 5 and all(text.rsplit(" ", 1)[0] in COCO_CLASSES for text in drawn)  # "name score"
    assert server.requests == [TINY_FILE] and "downloading tiny_coco from" in capsys.readouterr().err


@pytest.mark.parametrize("tool,args", [
    ("demo_image", ["--input", "{png}", "--output", "{out}"]),
    ("test", ["--config", "configs/synthetic/image_tiny.yaml", "--out", "{out}"]),
    ("track_video", ["--input", "assets/sample.mp4", "--output", "{out}",
                     "--config", "configs/synthetic/vis_demo.yaml"]),
])
def test_tools_report_a_bad_name_or_no_network_in_one_line(tool, args, register, home, tmp_path, load_tool,
                                                           capsys, monkeypatch):
    monkeypatch.chdir(repo.REPO_ROOT)
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((32, 32, 3), np.uint8))
    url = closed_port_url()
    register(offline=entry(url, PAYLOAD))
    argv = [a.format(png=tmp_path / "photo.png", out=tmp_path / "out") for a in args] + ["--threads", "1"]
    main = load_tool(tool).main
    for name, expected in (("queryinst_r50_3x_coco", "did you mean 'queryinst_r50_ms3x_coco'? known names: "),
                           ("offline", f"cannot download offline from {url}: Connection refused (no network?)")):
        assert main([*argv, "--weights", name]) == 2
        lines = repo.error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "out").exists() and cache_files(home) == []


def test_track_video_tracks_with_a_registered_mmdetection_name_and_no_config(tiny_coco, server, home, tmp_path,
                                                                             load_tool, capsys):
    """Issue 11's two commands, offline: a registered mmdetection image checkpoint is downloaded, converted and
    tracks a video by its query embeddings (no track head, no --config); the second run uses the cache."""
    from support.videos import moving_square, write_mjpeg_avi

    video = write_mjpeg_avi(tmp_path / "clip.avi", moving_square(4, 64, 96))
    for run in range(2):
        out = tmp_path / f"out{run}"
        status = load_tool("track_video").main(["--weights", "tiny_coco", "--input", str(video), "--output", str(out),
                                                "--no-video", "inference.score_threshold=0.0"])
        assert status == 0, capsys.readouterr().err
        data = json.loads((out / "clip.json").read_text())
        assert data["num_frames"] == 4 and len(data["categories"]) == 80
        assert data["categories"][0]["name"] == "person"  # COCO's names, from the registry
        assert [len(f["tracks"]) for f in data["frames"]] == [5] * 4  # 5 queries, all kept at threshold 0
    assert server.requests == [TINY_FILE]  # downloaded once
