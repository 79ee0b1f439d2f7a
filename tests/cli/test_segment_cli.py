"""``sam2-annotator segment`` end to end on the random-init model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sam2_annotator.cli import main
from sam2_annotator.engine.image_io import load_image
from sam2_annotator.engine.types import Prompt


def _read_png(path) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)


def test_segment_writes_the_engines_mask(tmp_path, model_dir, engine, shared_images, capsys):
    out = tmp_path / "mask é.png"
    image_path = shared_images["groceries"]
    code = main(
        [
            "segment",
            str(image_path),
            "--model",
            str(model_dir),
            "--point",
            "400,260",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    png = _read_png(out)
    image = load_image(image_path)
    assert png.shape == image.shape[:2]
    assert set(np.unique(png)) <= {0, 255}
    expected = engine.decode(
        engine.encode(image), Prompt(points=np.array([[400, 260]], np.float32), labels=np.ones(1))
    )
    np.testing.assert_array_equal(png == 255, expected.mask)
    assert summary["random_init"] is True and "random-init" in summary["model"]
    assert summary["provider"] == "cpu" and summary["multimask"] is True
    assert summary["candidate"] == expected.candidate
    assert summary["mask_pixels"] == int(expected.mask.sum())
    assert summary["encoder_ms"] > 0 and summary["decoder_ms"] > 0


def test_refine_with_saved_logits(tmp_path, model_dir, shared_images, capsys):
    logits = tmp_path / "first.npy"
    common = [str(shared_images["groceries"]), "--model", str(model_dir)]
    assert (
        main(
            [
                "segment",
                *common,
                "--box",
                "100,100,400,300",
                "--out",
                str(tmp_path / "a.png"),
                "--save-logits",
                str(logits),
            ]
        )
        == 0
    )
    assert np.load(logits).shape == (256, 256)
    assert (
        main(
            [
                "segment",
                *common,
                "--box",
                "100,100,400,300",
                "--point",
                "150,150,0",
                "--mask-input",
                str(logits),
                "--out",
                str(tmp_path / "b.png"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "single-mask" in text and "random-init" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg", "--point", "1,1"], "image not found"),
        (["{img}", "--point", "5000,10"], "outside the 800x534 image"),
        (["{img}"], "at least one --point"),
        (["{img}", "--point", "1,1", "--mask-input", "{tmp}/nope.npy"], "cannot read mask input"),
        (["{img}", "--point", "1,1", "--model", "{tmp}"], "exactly one"),
        (["{img}", "--point", "1,1", "--providers", "warp-drive"], "warp-drive"),
    ],
)
def test_user_errors_are_one_line(tmp_path, model_dir, shared_images, capsys, args, message):
    args = [a.format(img=shared_images["groceries"], tmp=tmp_path) for a in args]
    if "--model" not in args:
        args += ["--model", str(model_dir)]
    code = main(["segment", *args, "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("bad", ["1", "a,b", "1,2,5", "1,2,3,4"])
def test_bad_point_numbers_exit_with_usage(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["segment", "x.jpg", "--point", bad, "--out", str(tmp_path / "m.png")])
    assert exc.value.code == 2
    assert "--point" in capsys.readouterr().err
