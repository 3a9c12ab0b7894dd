import fastmri.data.subsample as subsample
import numpy as np
import pytest

from medrecon.physics.mri.masks import gaussian2d_mask, line_mask, poisson_mask

FASTMRI = {
    "random": subsample.RandomMaskFunc,
    "equispaced_fraction": subsample.EquispacedMaskFractionFunc,
    "equispaced": subsample.EquiSpacedMaskFunc,
}


@pytest.mark.parametrize("kind", list(FASTMRI))
@pytest.mark.parametrize("num_cols", [256, 320, 368, 369])
@pytest.mark.parametrize("cf,acc", [(0.08, 4), (0.04, 8)])
def test_line_masks_identical_to_fastmri(kind, num_cols, cf, acc):
    for seed in range(6):
        ref, nlow = FASTMRI[kind]([cf], [acc])((1, 640, num_cols, 2), seed=seed)
        got = line_mask(kind, num_cols, cf, acc, seed)
        np.testing.assert_array_equal(got.mask, ref.numpy().ravel())
        assert got.num_low_frequencies == nlow


def test_multiple_choices_and_tuple_seed_match_fastmri():
    for kind, cls in FASTMRI.items():
        ref, _ = cls([0.08, 0.04], [4, 8])((1, 640, 368, 2), seed=(3, 7))
        np.testing.assert_array_equal(line_mask(kind, 368, [0.08, 0.04], [4, 8], (3, 7)).mask, ref.numpy().ravel())


def test_line_mask_errors():
    with pytest.raises(ValueError, match="kind"):
        line_mask("radial", 256, 0.08, 4, 0)
    with pytest.raises(ValueError, match="center_fraction"):
        line_mask("random", 256, 1.5, 4, 0)
    with pytest.raises(ValueError, match="exceeds"):
        line_mask("equispaced_fraction", 256, 0.5, 4, 0)


def test_poisson_reproducible_and_accelerated():
    state = np.random.get_state()
    a = poisson_mask((96, 80), 5.0, 16, seed=3)
    b = poisson_mask((96, 80), 5.0, 16, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, poisson_mask((96, 80), 5.0, 16, seed=4))
    assert a[48 - 8 : 48 + 8, 40 - 8 : 40 + 8].all()
    assert 3.5 < a.size / a.sum() < 6.5
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])  # global RNG untouched


def test_gaussian2d_mask():
    m = gaussian2d_mask((64, 64), 4.0, 12, seed=0)
    np.testing.assert_array_equal(m, gaussian2d_mask((64, 64), 4.0, 12, seed=0))
    assert m.sum() == round(64 * 64 / 4)
    assert m[26:38, 26:38].all()
    # denser in the centre than at the edge
    assert m[16:48, 16:48].mean() > 2 * m[:8].mean()
