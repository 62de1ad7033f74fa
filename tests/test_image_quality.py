"""PSNR and SSIM of streamer.images.quality against scikit-image on real MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.images import quality

metrics = pytest.importorskip("skimage.metrics")
mnist = pytest.importorskip("export.mnist")


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """300 real MNIST test digits (32x32) and noisy versions at three noise levels."""
    pytest.importorskip("mnist")
    pytest.importorskip("cv2")
    clean = mnist.load().test[:300]
    noisy = np.concatenate([mnist.add_noise(clean[i::3], s, 7) for i, s in enumerate((0.1, 0.5, 0.9))])
    return np.concatenate([clean[0::3], clean[1::3], clean[2::3]]), noisy


def test_psnr_matches_skimage(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = pairs
    ref = [metrics.peak_signal_noise_ratio(c, n, data_range=1.0) for c, n in zip(clean, noisy)]
    np.testing.assert_allclose(quality.psnr_db(clean, noisy), ref, rtol=1e-6)
    assert quality.mean_psnr_db(clean, noisy) == pytest.approx(np.mean(ref), rel=1e-6)


def test_ssim_gaussian_matches_skimage(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    """Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, population covariances."""
    clean, noisy = pairs
    ref = [metrics.structural_similarity(c, n, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False) for c, n in zip(clean, noisy)]
    np.testing.assert_allclose(quality.ssim(clean, noisy, window="gaussian"), ref, atol=1e-6)


def test_ssim_uniform_matches_skimage_default(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = pairs
    ref = [metrics.structural_similarity(c, n, data_range=1.0) for c, n in zip(clean, noisy)]
    np.testing.assert_allclose(quality.ssim(clean, noisy, window="uniform"), ref, atol=1e-6)


def test_ssim_of_identical_images_is_one_and_drops_with_noise(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = pairs
    np.testing.assert_allclose(quality.ssim(clean[:20], clean[:20]), 1.0, atol=1e-9)
    low, high = (quality.mean_ssim(clean[i * 100:(i + 1) * 100], noisy[i * 100:(i + 1) * 100]) for i in (0, 2))
    assert 0.0 < high < low < 1.0  # sigma 0.9 is worse than sigma 0.1


def test_single_image_and_batch_agree(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = pairs
    assert quality.ssim(clean[5], noisy[5])[0] == pytest.approx(quality.ssim(clean, noisy)[5], abs=1e-12)
    assert quality.psnr_db(clean[5], noisy[5])[0] == pytest.approx(quality.psnr_db(clean, noisy)[5], abs=1e-12)


def test_exact_estimate_is_infinite_psnr_and_left_out_of_the_mean(pairs: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = pairs
    est = noisy[:10].copy()
    est[3] = clean[3]
    assert np.isinf(quality.psnr_db(clean[:10], est)[3])
    assert np.isfinite(quality.mean_psnr_db(clean[:10], est))


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        quality.ssim(np.zeros((2, 32, 32)), np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="smaller than"):
        quality.ssim(np.zeros((6, 6)), np.zeros((6, 6)))
    with pytest.raises(ValueError, match="window"):
        quality.ssim(np.zeros((32, 32)), np.zeros((32, 32)), window="box")  # type: ignore[arg-type]
