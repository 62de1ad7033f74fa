"""Recorded music: the loader on a real installed track (Debian's asc-music, GPL-2+, licence read from its
copyright file), the spectral measures against a direct numpy computation, and a short real training run
with a recorded held-out track, exported, parity-checked and scored on that track."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("soxr")
pytest.importorskip("librosa")

from export import music_data, music_eval, recorded_music  # noqa: E402
from streamer.audio import quality  # noqa: E402

ASC = next(s for s in recorded_music.SOURCES if s.package == "asc-music")
TRACK_FILE = "machine_wars.mp3"  # 4 min 51 s, 22.05 kHz stereo MP3; its name puts it in the test role


def asc_track() -> recorded_music.Track:
    if not (ASC.folder / TRACK_FILE).is_file():
        pytest.skip("Debian package asc-music not installed (apt-get install --no-install-recommends asc-music)")
    (track,) = [t for t in recorded_music.installed_tracks([ASC]) if t.path.name == TRACK_FILE]
    return track


def test_installed_track_has_its_licence_and_a_stable_role() -> None:
    track = asc_track()
    assert track.name == f"asc-music/{TRACK_FILE}" and track.source.licence == "GPL-2.0-or-later"
    assert "GPL-2+" in track.source.copyright_file.read_text()
    assert track.role == recorded_music.role_of(track.name) == "test"
    meta = recorded_music.sources_meta([track])
    assert meta["asc-music"]["tracks"]["test"] == [TRACK_FILE]


def test_a_licence_the_copyright_file_does_not_state_is_refused() -> None:
    asc_track()
    wrong = dataclasses.replace(ASC, licence="CC0-1.0", licence_text="CC0 1.0 Universal")
    with pytest.raises(recorded_music.LicenceError, match="copyright"):
        recorded_music.installed_tracks([wrong])


def test_track_is_decoded_to_8khz_mono_peak_normalised() -> None:
    import soundfile as sf
    import soxr

    track = asc_track()
    seconds = 6.0
    audio, peak = recorded_music.decode_track(track.path, max_seconds=seconds)
    raw, rate = sf.read(str(track.path), frames=int(seconds * 22050), dtype="float32", always_2d=True)
    assert rate == 22050 and raw.shape[1] == 2
    direct = soxr.resample(raw.astype(np.float64).mean(axis=1), rate, 8000)
    assert len(audio) == len(direct) == pytest.approx(seconds * 8000, abs=2)
    assert np.max(np.abs(audio)) == pytest.approx(1.0) and peak == pytest.approx(np.max(np.abs(direct)), rel=1e-6)
    assert np.max(np.abs(audio * peak - direct)) < 1e-5


def _direct_power(x: np.ndarray) -> np.ndarray:
    """|STFT|^2 as librosa computes it (centred frames, zero padding, periodic Hann), written out in numpy."""
    n, hop = music_eval.N_FFT, music_eval.STFT_HOP
    padded = np.pad(x.astype(np.float64), n // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    starts = np.arange(0, len(padded) - n + 1, hop)
    return np.abs(np.fft.rfft(padded[starts[:, None] + np.arange(n)] * window, axis=1).T) ** 2


def test_spectral_measures_equal_a_direct_computation() -> None:
    import librosa

    rng = np.random.default_rng(0)
    t = np.arange(3 * 8000) / 8000
    ref = (np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t) + 0.01 * rng.standard_normal(len(t)))
    est = music_eval.through_codec(music_eval.baselines()["dct_top_512_with_positions"], ref, 4096)
    p_ref, p_est = _direct_power(ref), _direct_power(est)
    floor = 10 * np.log10(p_ref.max()) - music_eval.TOP_DB
    db_ref = np.maximum(10 * np.log10(np.maximum(p_ref, 1e-20)), floor)
    db_est = np.maximum(10 * np.log10(np.maximum(p_est, 1e-20)), floor)
    lsd = np.mean(np.sqrt(np.mean((db_ref - db_est) ** 2, axis=0)))
    mel = librosa.filters.mel(sr=8000, n_fft=music_eval.N_FFT, n_mels=music_eval.N_MELS, fmax=4000)
    m_ref, m_est = mel @ p_ref, mel @ p_est
    mfloor = 10 * np.log10(m_ref.max()) - music_eval.TOP_DB
    mel_d = np.mean(np.abs(np.maximum(10 * np.log10(np.maximum(m_ref, 1e-20)), mfloor)
                           - np.maximum(10 * np.log10(np.maximum(m_est, 1e-20)), mfloor)))
    got = music_eval.spectral_distances(ref, est)
    assert lsd > 0.1 and mel_d > 0.01  # the codec changed something, so the check is not 0 == 0
    assert got["lsd_db"] == pytest.approx(lsd, rel=1e-4)
    assert got["mel_db"] == pytest.approx(mel_d, rel=1e-4)
    same = music_eval.spectral_distances(ref, ref)
    assert same["lsd_db"] == same["mel_db"] == 0.0


def test_signal_snr_is_the_frame_snr_of_side_by_side_blocks() -> None:
    rng = np.random.default_rng(2)
    ref = rng.standard_normal(5 * 4096 + 100)
    est = ref + 0.1 * rng.standard_normal(len(ref))
    blocks = (ref[:5 * 4096].reshape(5, -1), est[:5 * 4096].reshape(5, -1))
    assert music_eval.signal_figures(ref, est)["mean_frame_snr_db"] == pytest.approx(
        quality.mean_frame_snr_db(*blocks), abs=1e-3)


def test_mdct_baseline_is_exact_with_every_coefficient_and_keeps_k() -> None:
    x = np.random.default_rng(3).standard_normal((4, 4096)).astype(np.float32)
    assert np.max(np.abs(music_eval.mdct_topk(x, k=9 * 512) - x)) < 1e-5
    for hop in (4096, 2048):
        assert np.max(np.abs(music_eval.through_codec(lambda f: f, x.ravel(), hop) - x.ravel())) < 1e-6
    assert quality.snr_db(x, music_eval.mdct_topk(x, 512)) < quality.snr_db(x, music_eval.mdct_topk(x, 2048))


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("music21")
    import shutil

    if shutil.which("fluidsynth") is None or not music_data.SOUNDFONT.is_file():
        pytest.skip("rendering needs Debian's fluidsynth and fluid-soundfont-gm")
    from export.train_audio import train_audio

    track = asc_track()
    return train_audio("default", tmp_path_factory.mktemp("recorded"), epochs=1,
                       pieces=("bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7"), n_test=1, n_validation=1,
                       int8=False, recordings=[track])


@pytest.mark.slow  # about 2-3 minutes here: TensorFlow, one epoch, three ONNX exports, 2 min of audio scored
def test_short_run_on_recordings_is_exported_parity_checked_and_scored(recorded_run: dict[str, Any]) -> None:
    from export.onnx_export import onnx_runner, read_metadata

    path: Path = recorded_run["paths"]["autoencoder"]
    meta = read_metadata(path)
    assert meta["parity"]["max_abs_diff"] <= 1e-5
    assert f"asc-music/{TRACK_FILE}" in meta["training_data"]["pieces"]["test"]
    assert meta["training_data"]["rendering"]["recordings"]["sources"]["asc-music"]["licence"] == "GPL-2.0-or-later"
    rec = meta["metrics"]["recordings"]
    assert set(rec["figures"]) == {"4096", "2048"}
    assert rec["codecs"] == ["model", "dct_top_512_with_positions", "mdct_top_512_with_positions", "dct_first_1024"]
    # the card's figures are those of the written ONNX file, recomputed here on the same track
    x = next(p for p in recorded_run["split"].test if p.source != "music21")
    for hop in (4096, 2048):
        again = music_eval.signal_figures(x.audio, music_eval.through_codec(onnx_runner(path), x.audio, hop))
        assert rec["figures"][str(hop)]["tracks"][x.name]["model"] == pytest.approx(again, abs=2e-3)
    card = recorded_run["paths"]["card"].read_text()
    assert "## Held-out real recordings" in card and "| 2048 | asc-music/machine_wars.mp3 |" in card


def test_model_filterbank_in_numpy_equals_the_shipped_onnx_codec() -> None:
    """The budget sweep runs the shipped codec's kernels at other k in numpy: at its own k it is the ONNX model."""
    import soundfile as sf

    from export.onnx_export import onnx_runner

    model = Path(__file__).resolve().parent.parent / "samples" / "models" / "music.onnx"
    audio, rate = sf.read(str(model.parent.parent / "audio" / "bach.wav"), dtype="float32")
    x, _ = music_data.peak_normalise(music_data.to_model_rate(audio, rate))
    frames = music_data.frames([music_data.Piece("bach", x, 1.0, "bach.wav")])[:16]
    analysis, synthesis, hop = music_eval.model_filterbank(model)
    assert analysis.shape == synthesis.shape == (2 * hop, 512)
    ours = music_eval.filterbank_topk(frames, analysis, synthesis, 512, hop)
    assert np.max(np.abs(ours - onnx_runner(model)(frames))) < 1e-5


def test_shipped_card_quotes_the_held_out_recordings_and_the_readme_claims_hold() -> None:
    """metrics.recordings of the shipped codec (written by --attach-recordings): both hops, every codec, and
    what the README says of them: below the 2 dB SNR target over the adaptive DCT, lower spectral distances
    than every baseline on every held-out track."""
    from export.onnx_export import read_metadata

    model = Path(__file__).resolve().parent.parent / "samples" / "models" / "music.onnx"
    rec = read_metadata(model)["metrics"]["recordings"]
    assert set(rec["figures"]) == {"4096", "2048"} and rec["codecs"][0] == "model"
    for hop, figures in rec["figures"].items():
        tracks = figures["tracks"]
        assert len(tracks) >= 6 and all(set(row) == set(rec["codecs"]) for row in tracks.values())
        assert rec["smallest_snr_margin_db"][hop]["dct_top_512_with_positions"] < 2.0
        for row in tracks.values():
            for baseline in rec["codecs"][1:]:
                assert row["model"]["lsd_db"] < row[baseline]["lsd_db"]
                assert row["model"]["mel_db"] < row[baseline]["mel_db"]
