#!/usr/bin/env bash
# Regenerates samples/sample.wav and samples/sample.script.
#
# sample.wav    : S16LE, 16000 Hz, mono, 20.0 s of synthetic English speech
#                 (espeak-ng, voice en-us) with silence around each utterance.
# sample.script : the word-timed transcript the mock Soniox server plays back
#                 ("<start_ms> <end_ms> <word>" per line, blank line ends an
#                 utterance). Word times are spread over each utterance's
#                 measured speech span in proportion to the word's length.
#
# Requires: espeak-ng, sox, /usr/bin/python3 (stdlib only).
# The output is deterministic: running it twice gives identical files.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3

VOICE=en-us
SPEED=160          # words per minute
RATE=16000         # output sample rate

UTTERANCES=(
  "Hello, and welcome to the Soniox plugin for GStreamer."
  "It turns live audio into text, one word at a time."
  "Every word carries the exact time at which it was spoken."
  "Subtitles, captions and call transcripts all start here."
)

for tool in espeak-ng sox "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# 1. Synthesize each utterance and convert it to S16LE / 16 kHz / mono.
#    -D: no dither, so the conversion is bit-exact and repeatable.
i=0
for text in "${UTTERANCES[@]}"; do
  espeak-ng -v "$VOICE" -s "$SPEED" -w "$TMP/raw$i.wav" "$text"
  sox -D -R "$TMP/raw$i.wav" -r "$RATE" -c 1 -b 16 -e signed-integer "$TMP/utt$i.wav"
  printf '%s\n' "$text" >"$TMP/utt$i.txt"
  i=$((i + 1))
done

# 2. Trim, lay out with silence, write the WAV and the timed script.
"$PY" - "$TMP" "$i" "$HERE" "$VOICE" "$SPEED" "$RATE" <<'PYEOF'
import array
import os
import sys
import wave

tmp, count, out_dir, voice, speed, rate = sys.argv[1:7]
count, rate = int(count), int(rate)

TOTAL_MS = 20000      # total WAV length
LEAD_MS = 500         # silence before the first utterance
GAP_MS = 1100         # silence between utterances
MIN_TAIL_MS = 1200    # required silence after the last utterance
THRESHOLD = 64        # |sample| above this counts as speech (about -54 dBFS)
MIN_WORD_MS = 80

SPM = rate // 1000    # samples per millisecond (16)


def read_clip(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getframerate() == rate
        data = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        data.byteswap()
    return data


def speech_bounds(data):
    """First and one-past-last sample index whose magnitude exceeds THRESHOLD."""
    loud = [k for k, x in enumerate(data) if abs(x) > THRESHOLD]
    if not loud:
        sys.exit("no speech found")
    return loud[0], loud[-1] + 1


utterances = []
for n in range(count):
    data = read_clip(os.path.join(tmp, f"utt{n}.wav"))
    with open(os.path.join(tmp, f"utt{n}.txt"), encoding="ascii") as f:
        text = f.read().strip()
    a, b = speech_bounds(data)
    utterances.append((text, data[a:b]))

# Lay the trimmed clips out; every clip starts on a whole millisecond.
out = array.array("h")
spans = []  # (start_sample, end_sample) of speech in the output
pos_ms = LEAD_MS
for text, clip in utterances:
    start = pos_ms * SPM
    out.extend([0] * (start - len(out)))
    out.extend(clip)
    spans.append((start, start + len(clip)))
    end_ms = -(-len(out) // SPM)  # ceil
    pos_ms = end_ms + GAP_MS

total = TOTAL_MS * SPM
tail_ms = (total - len(out)) / SPM
if tail_ms < MIN_TAIL_MS:
    sys.exit(f"speech too long: only {tail_ms:.0f} ms of trailing silence")
out.extend([0] * (total - len(out)))

# Word timing: spread each utterance's span over its words in proportion to
# (letters + 1); boundaries are contiguous integer milliseconds.
script_utts = []
for (text, _), (s, e) in zip(utterances, spans):
    words = text.split()
    for w in words:
        core = w.rstrip(".,!?")
        if not core.isascii() or not core.isalpha():
            sys.exit(f"unsupported word: {w!r}")
    start_ms = -(-s // SPM)   # ceil: first word starts inside the speech
    end_ms = e // SPM         # floor: last word ends inside the speech
    weights = [sum(c.isalpha() for c in w) + 1 for w in words]
    total_w = sum(weights)
    bounds = [start_ms]
    acc = 0
    for wt in weights:
        acc += wt
        bounds.append(start_ms + round((end_ms - start_ms) * acc / total_w))
    timed = []
    for k, w in enumerate(words):
        t0, t1 = bounds[k], bounds[k + 1]
        if t1 - t0 < MIN_WORD_MS:
            sys.exit(f"word {w!r} too short: {t1 - t0} ms")
        timed.append((t0, t1, w))
    script_utts.append(timed)

if sys.byteorder != "little":
    out.byteswap()
with wave.open(os.path.join(out_dir, "sample.wav"), "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(out.tobytes())

lines = [
    "# Scripted transcript for samples/sample.wav, played by the mock Soniox server.",
    "# Generated by samples/make-sample.sh (espeak-ng voice %s at %s wpm, sox, python3);" % (voice, speed),
    "# do not edit by hand. Word times are spread over each utterance's measured",
    "# speech span in proportion to (letters + 1) of each word.",
    "# One word per line: <start_ms> <end_ms> <word>   (times in ms from the start of the WAV)",
    "# A blank line ends an utterance.",
]
for timed in script_utts:
    for t0, t1, w in timed:
        lines.append(f"{t0} {t1} {w}")
    lines.append("")
with open(os.path.join(out_dir, "sample.script"), "w", encoding="ascii", newline="\n") as f:
    f.write("\n".join(lines))

for (text, _), (s, e) in zip(utterances, spans):
    print(f"speech {s / SPM:8.1f} .. {e / SPM:8.1f} ms  {text}")
print(f"wrote sample.wav ({len(out)} samples, {len(out) / rate:.3f} s) and sample.script")
PYEOF
