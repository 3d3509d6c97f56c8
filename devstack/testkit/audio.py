"""Real audio for recorder tests and benchmarks (espeak-ng speech, resampled to 16 kHz by sox) and the
comparisons that prove a recording matches its source: decoding with PyAV and correlating loudness envelopes."""

from __future__ import annotations

import io
import shutil
import subprocess

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
Samples = npt.NDArray[np.int16]


def speech(text: str, *, voice: str = "en", speed: int = 160) -> Samples:
    """`text` spoken by espeak-ng, as 16 kHz int16 mono."""
    espeak = shutil.which("espeak-ng")
    sox = shutil.which("sox")
    if espeak is None or sox is None:
        raise RuntimeError("espeak-ng and sox are needed (scripts/apt-packages.txt; `make setup`)")
    wav = subprocess.run([espeak, "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True)
    raw = subprocess.run(
        [sox, "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", "-"],
        input=wav.stdout,
        check=True,
        capture_output=True,
    )
    return np.frombuffer(raw.stdout, dtype="<i2").copy()


def with_silence(*parts: Samples | float) -> Samples:
    """Concatenate audio and pauses (a float is seconds of silence), trimmed to whole 20 ms frames."""
    chunks = [np.zeros(int(part * SAMPLE_RATE), dtype="<i2") if isinstance(part, float) else part for part in parts]
    audio = np.concatenate(chunks)
    return audio[: len(audio) // 320 * 320]


def decode(data: bytes) -> Samples:
    """Decode a FLAC (or any) byte string with PyAV into int16 mono samples."""
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    return np.concatenate(frames).astype("<i2") if frames else np.zeros(0, dtype="<i2")


def envelope(audio: Samples, window: int = 320) -> npt.NDArray[np.float64]:
    """RMS loudness per 20 ms window."""
    usable = len(audio) // window * window
    blocks = audio[:usable].astype(np.float64).reshape(-1, window)
    loudness: npt.NDArray[np.float64] = np.sqrt((blocks**2).mean(axis=1))
    return loudness


def envelope_correlation(a: Samples, b: Samples) -> float:
    """Pearson correlation of the two signals' loudness envelopes over their common length."""
    ea, eb = envelope(a), envelope(b)
    n = min(len(ea), len(eb))
    if n < 2:
        return 0.0
    return float(np.corrcoef(ea[:n], eb[:n])[0, 1])


def best_alignment(recorded: Samples, source: Samples, max_shift_frames: int = 10) -> tuple[int, float]:
    """The shift (in 20 ms frames) of `recorded` against `source` with the best envelope correlation."""
    er, es = envelope(recorded), envelope(source)
    best = (0, -1.0)
    for shift in range(-max_shift_frames, max_shift_frames + 1):
        a = er[max(shift, 0) :]
        b = es[max(-shift, 0) :]
        n = min(len(a), len(b))
        if n > 10:
            value = float(np.corrcoef(a[:n], b[:n])[0, 1])
            if value > best[1]:
                best = (shift, value)
    return best
