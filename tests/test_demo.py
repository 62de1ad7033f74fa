"""`streamer demo` on the shipped samples and models: every output is written and the headline figures
are those of working models (held-out clip and digits)."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
from click.testing import CliRunner

from streamer.cli.main import main


def test_demo_runs_the_three_streams(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = CliRunner().invoke(main, ["demo", "--fast", "--no-dashboard", "--out", str(out),
                                  "--report", str(out / "report")])
    assert r.exit_code == 0, r.output
    ecg = json.loads((out / "ecg_summary.json").read_text())
    audio = json.loads((out / "audio_summary.json").read_text())
    images = json.loads((out / "images_summary.json").read_text())
    assert ecg["beats"] > 2000 and ecg["anomaly"]["auc"] > 0.95
    assert len((out / "ecg_beats.jsonl").read_text().splitlines()) == ecg["beats"]
    assert audio["snr_db"] > 10 and audio["edge_jump_ratio"] < 1.2 * audio["edge_jump_ratio_input"]
    wav = sf.info(str(out / "bach_reconstructed.wav"))
    assert wav.samplerate == 8000 and wav.frames == audio["samples_out"] > 0
    assert images["images"] == 16 and images["psnr_db"] > images["psnr_noisy_db"] + 8 and images["ssim"] > 0.8
    assert len(list((out / "denoised").glob("*.png"))) == 16
    assert "aestream demo" in r.output
    index = (out / "report" / "index.html").read_text()  # links each stream's own page
    for stream, figure in (("ecg", "ecg_roc"), ("audio", "audio_mel"), ("images", "images_grid")):
        assert f'href="{stream}/index.html"' in index
        assert (out / "report" / stream / f"{figure}.png").is_file()
    assert ecg["report"] == str(out / "report" / "ecg" / "index.html")
