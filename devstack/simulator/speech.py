"""Audio for simulated participants: speech rendered with espeak-ng (resampled to 16 kHz with sox, or
numpy when sox is missing) and audio files, as 16-bit mono PCM at 16 kHz. Renders are cached on disk by
(text, voice, speed), so a script costs its synthesis once."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
VOICE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,16})?$")
MAX_TEXT = 4000
MAX_FILE_BYTES = 200 * 1024 * 1024
MEMORY_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_VOICES = ("en-us+m3", "en-gb+f3", "en-us+f2", "en-gb+m1", "en-us+m7", "en-gb+f4")

Pcm = npt.NDArray[np.int16]


class SpeechError(ValueError):
    """Speech or an audio file could not be turned into PCM; the message says why."""


def resample(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """Linear-interpolation resampling to 16 kHz (used when sox is not installed)."""
    if rate == SAMPLE_RATE or len(samples) == 0:
        return samples
    duration = len(samples) / rate
    target = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    source = np.arange(len(samples)) / rate
    return np.interp(target, source, samples)


def _read_wav(path: Path) -> tuple[npt.NDArray[np.float64], int]:
    with wave.open(str(path), "rb") as handle:
        rate, width, channels = handle.getframerate(), handle.getsampwidth(), handle.getnchannels()
        raw = handle.readframes(handle.getnframes())
    if width != 2:
        raise SpeechError(f"{path.name}: only 16-bit WAV is read without soundfile")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data, rate


def _to_int16(samples: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2")


class SpeechRenderer:
    """Turns text or files into 16 kHz mono int16 PCM, caching rendered speech in ``cache_dir``."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.espeak = shutil.which("espeak-ng")
        self.sox = shutil.which("sox")
        self._locks: dict[str, asyncio.Lock] = {}
        # rendered speech kept in memory too: every call that says the same line shares one array
        self._memory: OrderedDict[str, Pcm] = OrderedDict()
        self._memory_bytes = 0

    async def speech(self, text: str, voice: str, speed: int = 160) -> Pcm:
        if not text.strip():
            raise SpeechError("speech text is empty")
        if len(text) > MAX_TEXT:
            raise SpeechError(f"speech text is longer than {MAX_TEXT} characters")
        if not VOICE.match(voice):
            raise SpeechError(f"voice {voice!r} is not an espeak-ng voice name such as 'en-us+m3'")
        if not 80 <= speed <= 450:
            raise SpeechError("speed must be between 80 and 450 words per minute")
        key = hashlib.sha256(f"{voice}\x00{speed}\x00{text}".encode()).hexdigest()
        cached = self.cache_dir / f"{key}.pcm"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            held = self._memory.get(key)
            if held is not None:
                self._memory.move_to_end(key)
                return held
            if not await asyncio.to_thread(cached.exists):
                await self._render(text, voice, speed, cached)
            pcm = np.frombuffer(await asyncio.to_thread(cached.read_bytes), dtype="<i2")
            self._remember(key, pcm)
            return pcm

    def _remember(self, key: str, pcm: Pcm) -> None:
        self._memory[key] = pcm
        self._memory_bytes += pcm.nbytes
        while self._memory_bytes > MEMORY_CACHE_BYTES and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= dropped.nbytes

    async def _render(self, text: str, voice: str, speed: int, target: Path) -> None:
        if self.espeak is None:
            raise SpeechError("espeak-ng is not installed (scripts/apt-packages.txt lists it)")
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            raw, resampled = Path(tmp) / "raw.wav", Path(tmp) / "16k.wav"
            await _run([self.espeak, "-v", voice, "-s", str(speed), "-w", str(raw), "--stdin"], text.encode())
            source = raw
            if self.sox is not None:
                await _run([self.sox, str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)])
                source = resampled
            samples, rate = _read_wav(source)
            pcm = _to_int16(resample(samples, rate))
            partial = target.with_suffix(".tmp")
            partial.write_bytes(pcm.tobytes())
            partial.replace(target)

    async def audio_file(self, path: Path) -> Pcm:
        return await asyncio.to_thread(self._read_any, path)

    def _read_any(self, path: Path) -> Pcm:
        if not path.is_file():
            raise SpeechError(f"audio file {path} does not exist")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpeechError(f"audio file {path} is larger than {MAX_FILE_BYTES} bytes")
        try:
            import soundfile

            data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
            samples = data.mean(axis=1) * 32767.0
        except ImportError:
            samples, rate = _read_wav(path)
        except RuntimeError as error:
            raise SpeechError(f"cannot read audio file {path.name}: {error}") from error
        return _to_int16(resample(samples, int(rate)))


async def _run(argv: list[str], stdin: bytes | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate(stdin)
    if process.returncode != 0:
        raise SpeechError(f"{Path(argv[0]).name} failed: {err.decode(errors='replace').strip()[:300]}")
