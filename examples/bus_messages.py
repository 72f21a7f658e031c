#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""Reads sonioxstt from a Python application: its bus messages and its words.

Prints the interim (non-final) text as it changes, each final piece of text, endpoints,
session events, and each word buffer with its SonioxWordMeta (confidence, speaker, language).
Exits 1 on an error. Usage (with the plugin on GST_PLUGIN_PATH):

    /usr/bin/python3 examples/bus_messages.py FILE.wav [URL]

URL is the Soniox endpoint, e.g. the stand-in's ws://127.0.0.1:8765/transcribe-websocket;
without it, Soniox itself (the key from SONIOX_API_KEY).
"""
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
path = sys.argv[1] if len(sys.argv) > 1 else "samples/sample.wav"
pipeline = Gst.parse_launch(
    f'filesrc location="{path}" ! wavparse ! audioconvert ! audioresample ! '
    "sonioxstt name=stt ! fakesink name=words signal-handoffs=true"
)
if len(sys.argv) > 2:
    pipeline.get_by_name("stt").set_property("url", sys.argv[2])

# Words are printed from the streaming thread, messages from this one: one line at a time.
printing = threading.Lock()


def say(line, file=sys.stdout):
    with printing:
        print(line, file=file, flush=True)


def on_word(_sink, buffer, _pad):
    """Each text buffer: the word, its time, and what Soniox said about it."""
    ok, info = buffer.map(Gst.MapFlags.READ)
    if not ok:
        return
    text = bytes(info.data).decode("utf-8")
    buffer.unmap(info)
    meta = buffer.get_custom_meta("SonioxWordMeta")
    details = ""
    if meta is not None:
        fields = meta.get_structure()
        _, confidence = fields.get_double("confidence")
        details = f"confidence {confidence:.2f}"
        for name in ("speaker", "language"):
            if fields.has_field(name):
                details += f", {name} {fields.get_string(name)}"
    say(f"word:    {buffer.pts / Gst.SECOND:7.3f} s {text!r} ({details})")


pipeline.get_by_name("words").connect("handoff", on_word)
pipeline.set_state(Gst.State.PLAYING)
bus = pipeline.get_bus()
last_interim = ""
failed = False
while True:
    message = bus.timed_pop(Gst.CLOCK_TIME_NONE)
    if message.type == Gst.MessageType.EOS:
        break
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        say(f"error: {error.message}", file=sys.stderr)
        failed = True
        break
    if message.type != Gst.MessageType.ELEMENT:
        continue
    s = message.get_structure()
    name = s.get_name()
    if name == "soniox/transcript":
        if s.get_string("final"):
            say(f"final:   {s.get_string('final')!r}")
        interim = s.get_string("interim")
        if interim and interim != last_interim:
            say(f"interim: {interim!r}")
        last_interim = interim
    elif name == "soniox/endpoint":
        _, pts = s.get_uint64("pts")
        say(f"endpoint at {pts / Gst.SECOND:.3f} s: {s.get_string('text')}")
    elif name == "soniox/session":
        say(f"session {s.get_value('session')}: {s.get_string('event')}")
pipeline.set_state(Gst.State.NULL)
sys.exit(1 if failed else 0)
