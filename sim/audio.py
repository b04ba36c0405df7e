"""Audio helpers for the simulator and the tests: make prompts, read recordings, compare them.

This module owns how we decide that "the far end heard what was played": normalised
cross-correlation of the reference against the received recording over every lag, computed with
FFTs so a 30 s call is compared in milliseconds. It also makes test audio (tones, and Mandarin
speech via espeak-ng + sox) as 8 kHz mono 16-bit WAV, the format Asterisk and the phone workers
use. It does no I/O besides reading and writing the files it is given.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

TELEPHONE_RATE = 8000
AudioInput = str | Path | tuple[np.ndarray, int]


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples of a 16-bit PCM WAV as a mono int16 array (channels averaged), and its rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            bits = 8 * w.getsampwidth()
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, not {bits}-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data.astype(np.int16, copy=False), rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int = TELEPHONE_RATE) -> Path:
    """Write mono samples (int16, or float in [-1, 1]) as a 16-bit PCM WAV."""
    data = np.asarray(samples)
    if data.dtype.kind == "f":
        data = np.clip(np.round(data * 32767), -32768, 32767)
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.astype("<i2").tobytes())
    return path


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling by FFT (zero-padding or truncating the spectrum)."""
    x = np.asarray(samples, dtype=np.float64)
    if src_rate == dst_rate or len(x) == 0:
        return x
    n_out = max(1, round(len(x) * dst_rate / src_rate))
    spectrum = np.fft.rfft(x)
    out_bins = n_out // 2 + 1
    if out_bins <= len(spectrum):
        spectrum = spectrum[:out_bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(out_bins - len(spectrum), complex)])
    return np.fft.irfft(spectrum, n_out) * (n_out / len(x))


def _load(audio: AudioInput) -> tuple[np.ndarray, int]:
    if isinstance(audio, tuple):
        samples, rate = audio
        return np.asarray(samples), int(rate)
    return read_wav(audio)


def _prepare(received: AudioInput, reference: AudioInput) -> tuple[np.ndarray, np.ndarray, int]:
    rx, rx_rate = _load(received)
    ref, ref_rate = _load(reference)
    x = resample(rx, rx_rate, ref_rate) if rx_rate != ref_rate else rx.astype(np.float64)
    r = ref.astype(np.float64)
    if len(x):
        x = x - x.mean()
    if len(r):
        r = r - r.mean()
    return x, r, ref_rate


def _best_ncc(x: np.ndarray, r: np.ndarray) -> float:
    """Max over all lags of |<r, x window>| / (||r|| * ||x window||), computed with FFTs."""
    if len(x) == 0 or len(r) == 0:
        return 0.0
    ref_norm = math.sqrt(float(np.dot(r, r)))
    if ref_norm == 0.0:
        return 0.0
    n = len(x) + len(r) - 1
    size = 1 << (n - 1).bit_length()
    # circ[k] = sum_j x[j + k] * r[j]; negative lags wrap to the end of the buffer.
    circ = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(r, size)), size)
    full = np.concatenate([circ[size - (len(r) - 1) :], circ[: len(x)]])
    # Energy of the received samples under the reference at each lag, from a cumulative sum.
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    lags = np.arange(-(len(r) - 1), len(x))
    window = energy[np.clip(lags + len(r), 0, len(x))] - energy[np.clip(lags, 0, len(x))]
    # Windows with (almost) no energy cannot carry the reference; keep them out of the max.
    valid = window > 1e-9 * ref_norm * ref_norm
    if not valid.any():
        return 0.0
    scores = np.abs(full[valid]) / (np.sqrt(window[valid]) * ref_norm)
    return float(min(1.0, scores.max()))


def correlation(received: AudioInput, reference: AudioInput) -> float:
    """Best normalised cross-correlation of ``reference`` within ``received``, in [0, 1].

    Each input is a WAV path or a ``(samples, rate)`` pair; ``received`` is resampled to the
    reference's rate if they differ. For every lag, the dot product of the reference with the
    received window is divided by the norms of the whole reference and of that window, so 1.0
    means the reference appears intact (up to gain) somewhere in the received audio, and
    windows only partly overlapping the recording are penalised for the missing part.
    The sign is ignored: an inverted signal still counts as heard.

    One alignment must fit the whole reference: a receiver's jitter buffer that inserts or
    drops a 20 ms frame mid-way (it happens, even on loopback) lowers this score sharply
    although every word was heard. ``segment_correlation`` tolerates that.
    """
    x, r, _ = _prepare(received, reference)
    return _best_ncc(x, r)


def segment_correlation(
    received: AudioInput, reference: AudioInput, segment_s: float = 0.5
) -> float:
    """Like ``correlation`` but each ``segment_s`` piece of the reference is aligned on its own.

    Returns the energy-weighted mean of the pieces' best scores, so timing slips between
    pieces (jitter-buffer adjustments) cost nothing while missing or distorted audio still
    does. Pieces with under 1 % of the reference's mean energy (pauses) are skipped.
    """
    x, r, rate = _prepare(received, reference)
    step = max(1, round(segment_s * rate))
    pieces = [r[i : i + step] for i in range(0, len(r), step)]
    energies = np.array([float(np.dot(p, p)) / max(1, len(p)) for p in pieces])
    if len(pieces) == 0 or energies.max(initial=0.0) == 0.0:
        return 0.0
    floor = 0.01 * float(np.dot(r, r)) / len(r)
    kept = [(p, e) for p, e in zip(pieces, energies, strict=True) if e > floor]
    total = sum(e * len(p) for p, e in kept)
    return sum(_best_ncc(x, p) * e * len(p) for p, e in kept) / total


def rms_dbfs(path: str | Path) -> float:
    """RMS level of a WAV relative to full scale (0 dBFS); -inf for digital silence."""
    samples, _ = read_wav(path)
    if len(samples) == 0:
        return float("-inf")
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * math.log10(rms / 32768) if rms > 0 else float("-inf")


def is_silent(path: str | Path, threshold_dbfs: float = -50.0) -> bool:
    return rms_dbfs(path) < threshold_dbfs


def make_tone_wav(
    path: str | Path,
    freqs: float | Iterable[float],
    seconds: float,
    rate: int = TELEPHONE_RATE,
    amplitude: float = 0.5,
) -> Path:
    """A WAV of the sum of sine tones (peak ``amplitude`` of full scale)."""
    freq_list = [float(freqs)] if isinstance(freqs, int | float) else [float(f) for f in freqs]
    t = np.arange(round(seconds * rate)) / rate
    signal = sum((np.sin(2 * np.pi * f * t) for f in freq_list), np.zeros_like(t))
    if freq_list:
        signal = signal / len(freq_list)
    return write_wav(path, amplitude * signal, rate)


def speak_wav(
    path: str | Path, text: str, voice: str = "cmn", rate: int = TELEPHONE_RATE, speed: int = 150
) -> Path:
    """Speak ``text`` with espeak-ng and convert it with sox to a mono 16-bit WAV at ``rate``."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (Debian package: {tool})")
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", path],
            check=True,
            capture_output=True,
        )
    return path
