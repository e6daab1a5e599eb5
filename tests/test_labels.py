import numpy as np
import pytest

from facebench.errors import InvalidMask
from facebench.labels import CELEBAMASK_HQ, FACEBENCH, FARL, IGNORE, LAPA


def test_order_matches_bisenet_convention():
    assert FACEBENCH.names[:5] == ("background", "skin", "l_brow", "r_brow", "l_eye")
    assert FACEBENCH.names[17] == "hair" and FACEBENCH.num_classes == 19
    assert len(FACEBENCH.palette) == 19 and len(set(FACEBENCH.palette)) == 19


def test_flip_swaps_left_right_and_mirrors():
    m = np.zeros((4, 6), np.uint8)
    m[1, 0] = FACEBENCH.index("l_eye")
    m[2, 5] = FACEBENCH.index("r_ear")
    m[3, 2] = FACEBENCH.index("nose")
    f = FACEBENCH.flip(m)
    assert f[1, 5] == FACEBENCH.index("r_eye")
    assert f[2, 0] == FACEBENCH.index("l_ear")
    assert f[3, 3] == FACEBENCH.index("nose")
    np.testing.assert_array_equal(FACEBENCH.flip(f), m)


def test_remap_by_name_round_trip_through_other_orders():
    m = np.arange(19, dtype=np.uint8).reshape(1, 19)
    for other in (CELEBAMASK_HQ, FARL):
        there = other.remap_from(m, FACEBENCH)
        assert other.names[there[0, FACEBENCH.index("hair")]] == "hair"
        np.testing.assert_array_equal(FACEBENCH.remap_from(there, other), m)
    # FaRL's 'face' is our skin, its 'rr' our r_ear.
    assert FACEBENCH.lut_from(FARL)[FARL.names.index("face")] == FACEBENCH.index("skin")
    assert FACEBENCH.lut_from(FARL)[FARL.names.index("rr")] == FACEBENCH.index("r_ear")


def test_lapa_missing_classes_become_ignore():
    lapa_to_ours = LAPA.lut_from(FACEBENCH)
    assert lapa_to_ours[FACEBENCH.index("l_ear")] == IGNORE
    assert lapa_to_ours[FACEBENCH.index("u_lip")] == LAPA.index("u_lip")


def test_merged_view_joins_pairs():
    merged, lut = FACEBENCH.merged
    assert "eye" in merged.names and "l_eye" not in merged.names
    assert lut[FACEBENCH.index("l_eye")] == lut[FACEBENCH.index("r_eye")] == merged.index("eye")
    assert merged.num_classes == 16


def test_validate_rejects_illegal_values_and_names_path():
    ok = np.array([[0, 18, 255]], np.uint8)
    FACEBENCH.validate(ok)
    with pytest.raises(InvalidMask, match=r"m\.png: illegal label values 19"):
        FACEBENCH.validate(np.array([[19, 3]], np.uint8), "m.png")
    with pytest.raises(InvalidMask, match="uint8"):
        FACEBENCH.validate(np.zeros((2, 2), np.int32))
