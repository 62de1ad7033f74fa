"""`streamer encode/decode/mix`: the autoencoder's encoder and decoder as a codec, on real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamer.audio.codec import Codes, decode_codes, encode_file, mix_codes
from streamer.cli.main import main
from tests.onnx_models import dct_codec, dct_matrix


def _lowpass(x: np.ndarray) -> np.ndarray:
    """What the DCT test codec should give: the first 1024 DCT coefficients of each 4096-sample frame."""
    frames = np.zeros(-(-len(x) // 4096) * 4096)
    frames[:len(x)] = x
    d = dct_matrix()[:1024]
    return ((frames.reshape(-1, 4096) @ d.T) @ d).reshape(-1)[:len(x)]


def test_encode_decode_round_trip(tmp_path: Path, music_wav: Path, music_8k: np.ndarray) -> None:
    model = dct_codec(tmp_path)
    codes = encode_file(music_wav, model)
    assert codes.codes.shape == (-(-len(music_8k) // 4096), 1024)
    assert codes.n_samples == len(music_8k) and codes.peak == pytest.approx(np.abs(music_8k).max(), rel=1e-5)
    codes.save(tmp_path / "codes.npz")
    back = decode_codes(Codes.load(tmp_path / "codes.npz"), model)
    np.testing.assert_allclose(back, _lowpass(music_8k), atol=2e-5)


def test_cli_encode_decode_and_mix(tmp_path: Path, music_wav: Path, music_8k: np.ndarray) -> None:
    import soundfile as sf

    model = dct_codec(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["encode", str(music_wav), "-o", str(tmp_path / "c.npz"), "--model", str(model)])
    assert r.exit_code == 0, r.output
    # the decoder file alone is enough to decode
    r = runner.invoke(main, ["decode", str(tmp_path / "c.npz"), "-o", str(tmp_path / "back.wav"),
                             "--model", str(tmp_path / "dct.decoder.onnx")])
    assert r.exit_code == 0, r.output
    back, rate = sf.read(str(tmp_path / "back.wav"))
    assert rate == 8000 and len(back) == len(music_8k)
    np.testing.assert_allclose(back, _lowpass(music_8k), atol=2e-4)  # 16-bit WAV
    # a linear codec mixes linearly: 0.75 * a + 0.25 * b, peak-normalised
    other = tmp_path / "other.wav"
    sf.write(str(other), music_8k[::-1].copy(), 8000)
    r = runner.invoke(main, ["mix", str(music_wav), str(other), "--weights", "0.75", "0.25",
                             "--out", str(tmp_path / "mix.wav"), "--model", str(model)])
    assert r.exit_code == 0, r.output
    mixed, _ = sf.read(str(tmp_path / "mix.wav"))
    a = _lowpass(music_8k / np.abs(music_8k).max())
    b = _lowpass(music_8k[::-1] / np.abs(music_8k).max())
    expected = 0.75 * a + 0.25 * b
    np.testing.assert_allclose(mixed, expected * 0.89 / np.abs(expected).max(), atol=2e-4)


def test_topk_mixing_in_coefficient_space() -> None:
    rng = np.random.default_rng(0)
    k, n = 4, 16
    dense_a, dense_b = np.zeros((2, n)), np.zeros((2, n))
    for row in range(2):
        dense_a[row, rng.choice(n, k, replace=False)] = rng.normal(size=k)
        dense_b[row, rng.choice(n, k, replace=False)] = rng.normal(size=k)

    def code(dense: np.ndarray) -> np.ndarray:  # the encoder's layout: k values, then positions ascending
        idx = np.sort(np.argsort(-np.abs(dense), axis=1)[:, :k], axis=1)
        return np.concatenate([np.take_along_axis(dense, idx, 1), idx], axis=1).astype(np.float32)

    latent = {"kind": "topk", "k": k, "coefficients": n}
    same = mix_codes(code(dense_a), code(dense_b), (1.0, 0.0), latent)
    np.testing.assert_allclose(same, code(dense_a), atol=1e-6)  # weights (1, 0) give back the first code
    both = mix_codes(code(dense_a), code(dense_b), (0.5, 0.5), latent)
    expected = 0.5 * dense_a + 0.5 * dense_b
    np.testing.assert_allclose(both, code(expected), atol=1e-6)  # the k largest of the mixed map
    with pytest.raises(ValueError, match="cannot mix"):
        mix_codes(same, same, (1, 0), {"kind": "vq"})


def test_bad_codes_file(tmp_path: Path, music_wav: Path) -> None:
    """What is not a codes file is told by its content (not its name), in one line without numpy's advice."""
    bad = tmp_path / "codes.npz"
    bad.write_text("not numpy")
    other_npz = tmp_path / "other.npz"
    np.savez(other_npz, images=np.zeros(3))
    renamed_wav = tmp_path / "audio.npz"
    renamed_wav.write_bytes(music_wav.read_bytes())
    for path, extra in ((bad, ""), (music_wav, "audio file"), (renamed_wav, "audio file"), (other_npz, "without")):
        r = CliRunner().invoke(main, ["decode", str(path), "-o", str(tmp_path / "x.wav")])
        lines = r.stderr.splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output, r.output
        assert lines[0].startswith(f"streamer: error: {path}: not a codes file made by `streamer encode`")
        assert extra in lines[0] and "pickle" not in lines[0]


def test_codes_file_is_compact_and_old_files_still_read(tmp_path: Path, music_wav: Path,
                                                        music_8k: np.ndarray) -> None:
    """The shipped codec's codes: float16 values and uint16 positions, compressed: over 5x smaller than the
    16-bit PCM of the same audio, and decoding them loses < 0.05 dB of SNR against float32 codes. A file in the
    first layout (every code float32 under `codes`) still reads."""
    import json

    from streamer.audio.quality import snr_db
    from tests.conftest import MODELS

    model = MODELS / "music.onnx"
    codes = encode_file(music_wav, model)
    path = tmp_path / "codes"  # no suffix: written under exactly this name
    codes.save(path)
    ratio = 2 * codes.n_samples / path.stat().st_size
    assert path.is_file() and ratio > 5.0
    from tests.conftest import ROOT

    assert f"**{ratio:.1f}x smaller**" in (ROOT / "README.md").read_text()  # the README's figure is this one
    with np.load(path) as z:
        assert z["values"].dtype == np.float16 and z["positions"].dtype == np.uint16 and "codes" not in z.files
    back = Codes.load(path)
    assert np.array_equal(back.codes[:, 512:], codes.codes[:, 512:])  # positions exact
    full, compact = decode_codes(codes, model), decode_codes(back, model)
    assert abs(snr_db(music_8k, full) - snr_db(music_8k, compact)) < 0.05
    old = tmp_path / "old.npz"
    np.savez_compressed(old, codes=codes.codes, n_samples=codes.n_samples, peak=codes.peak,
                        sample_rate_hz=codes.sample_rate_hz, frame=codes.frame, latent=json.dumps(codes.latent),
                        model=codes.model)
    assert np.array_equal(Codes.load(old).codes, codes.codes)


def test_shipped_model_codes_decode_and_mix(tmp_path: Path, music_wav: Path, music_8k: np.ndarray) -> None:
    """The shipped music model as a codec on its held-out clip; a (1, 0) mix gives back the first piece."""
    import soundfile as sf

    from streamer.audio.codec import mix_files
    from streamer.audio.quality import snr_db
    from tests.conftest import MODELS

    model = MODELS / "music.onnx"
    codes = encode_file(music_wav, model)
    assert codes.codes.shape[1] == 1024 and codes.latent["kind"] == "topk"
    back = decode_codes(codes, model)
    assert snr_db(music_8k, back) > 10
    other = tmp_path / "reversed.wav"
    sf.write(str(other), music_8k[::-1].copy(), 8000)
    mixed, rate = mix_files(music_wav, other, (1.0, 0.0), model)
    np.testing.assert_allclose(mixed, back * 0.89 / np.abs(back).max(), atol=1e-4)
    blend, _ = mix_files(music_wav, other, (0.5, 0.5), model)
    assert 0.3 < np.corrcoef(blend, back)[0, 1] < 0.95  # both pieces are in the blend
