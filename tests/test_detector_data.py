"""Readers: any colour type and bit depth as one channel; SIRST, mask folders and COCO json."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from detector import DetectorError
from detector.datasets import components, open_dataset
from detector.imageio import load_grey, normalize

SIRST = DATA / "sirst"


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
def test_any_colour_type_loads_as_one_channel(tmp_path, mode):
    grey = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 5).astype(np.uint8)
    if mode == "I;16":
        img = Image.fromarray(grey.astype(np.uint16) * 257)
    else:
        img = Image.fromarray(grey, "L").convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    img.save(path)
    out = load_grey(path)
    assert out.shape == (6, 8)
    if mode == "I;16":
        assert out.dtype == np.uint16 and int(out.max()) == int(grey.max()) * 257
    else:
        assert out.dtype == np.uint8 and np.abs(out.astype(int) - grey).max() <= 1


def test_normalisation_is_the_same_for_8_and_16_bit():
    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 255, (20, 30)).astype(np.uint8)
    a16 = a8.astype(np.uint16) * 257
    assert np.allclose(normalize(a8), normalize(a16), atol=1e-5)


def test_a_wrong_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(DetectorError, match="not a readable image"):
        load_grey(bad)
    with pytest.raises(DetectorError, match="no such file"):
        load_grey(tmp_path / "missing.png")
    with pytest.raises(DetectorError, match="not a dataset"):
        open_dataset(tmp_path, "train")


def test_mask_components_give_intensity_weighted_centroids():
    image = np.zeros((10, 10), np.uint8)
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4, 3:6] = 1
    image[2:4, 3:6] = [[10, 10, 100], [10, 10, 100]]
    cents, boxes = components(mask, image)
    assert boxes.tolist() == [[3, 2, 5, 3]]
    assert cents[0, 0] > 4.0 and cents[0, 1] == pytest.approx(2.5)


def _write_mask_dataset(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (x, y) in enumerate([(5, 7), (20, 11)]):
        img = np.full((24, 32), 20, np.uint8)
        img[y - 1:y + 2, x - 1:x + 2] = 200
        mask = (img > 100).astype(np.uint8) * 255
        Image.fromarray(img).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")
    (root / "train.txt").write_text("im0\nim1")


def test_mask_folder_reader(tmp_path):
    _write_mask_dataset(tmp_path)
    samples = open_dataset(tmp_path, "train")
    assert [s.name for s in samples] == ["im0", "im1"]
    assert np.allclose(samples[1].centroids, [[20, 11]])
    assert samples[1].boxes.tolist() == [[19, 10, 21, 12]]


def test_coco_reader_converts_to_the_pixel_centre_convention(tmp_path):
    img = np.full((16, 16), 10, np.uint8)
    img[4:7, 8:11] = 200  # pixels x 8..10, y 4..6: centre (9, 5)
    Image.fromarray(img).save(tmp_path / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 16}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [8, 4, 3, 3], "category_id": 1}],
            "categories": [{"id": 1, "name": "target"}]}
    (tmp_path / "test.json").write_text(json.dumps(coco))
    (s,) = open_dataset(tmp_path, "test")
    assert s.boxes.tolist() == [[8, 4, 10, 6]]
    assert np.allclose(s.centroids, [[9, 5]])


@pytest.mark.skipif(not SIRST.is_dir(), reason=f"{SIRST} is absent (set ITD_DATA)")
def test_sirst_splits_are_disjoint_and_complete():
    splits = {s: open_dataset(SIRST, s) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [256, 85, 86]
    names = [set(x.name for x in v) for v in splits.values()]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert sum(len(x.centroids) for v in splits.values() for x in v) == 533
    for s in splits["test"]:
        assert s.image.ndim == 2 and len(s.centroids) == len(s.boxes)
