"""`Detections`: columnar selection, concatenation, the box derived from the predicted extents, JSON rows."""
import numpy as np
import pytest

from detector.detections import Detections


def _dets() -> Detections:
    return Detections([[10, 20], [30.5, 40.25], [5, 5]], [[1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5], [1, 1, 1, 1]],
                      [0.9, 0.4, 0.7])


def test_box_and_size_come_from_the_predicted_extents():
    d = _dets()
    assert d.xyxy[0].tolist() == [9, 18, 13, 24] and d.wh[0].tolist() == [4, 6]
    assert d.xy.dtype == d.ltrb.dtype == d.score.dtype == np.float32 and d.ltrb.shape == (3, 4)


def test_selection_and_concat_keep_every_column():
    d = _dets()
    strong = d[d.score >= 0.5]
    assert len(strong) == 2 and strong.ltrb.tolist() == [[1, 2, 3, 4], [1, 1, 1, 1]]
    assert d[1].xy.tolist() == [[30.5, 40.25]] and len(d[1:]) == 2
    both = Detections.concat([d, Detections.empty(), d[:1]])
    assert len(both) == 4 and both.ltrb[3].tolist() == [1, 2, 3, 4]
    assert len(Detections.concat([])) == 0 and Detections().ltrb.shape == (0, 4)
    with pytest.raises(ValueError):
        Detections([[1, 2]], [[3, 3]], [0.5])  # a box size is not the extents


def test_json_rows_round_trip_and_rows_with_a_size_only_still_read():
    d = _dets()
    back = Detections.from_dicts(d.to_dicts())
    assert np.allclose(back.xy, d.xy) and np.allclose(back.ltrb, d.ltrb) and np.allclose(back.score, d.score)
    old = Detections.from_dicts([{"x": 10, "y": 20, "w": 4, "h": 2, "score": 0.5}, {"x": 1, "y": 1}])
    assert old.xyxy.tolist() == [[8, 19, 12, 21], [0.5, 0.5, 1.5, 1.5]] and old.score.tolist() == [0.5, 1.0]
    assert Detections.from_xywh([[10, 20]], [[4, 2]], [0.5]).xyxy.tolist() == [[8, 19, 12, 21]]
