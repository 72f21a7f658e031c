#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""Reads sonioxstt's bus messages from a Python application.

Prints the interim (non-final) text as it changes, each final piece of text, endpoints and
session events. Usage (with the plugin on GST_PLUGIN_PATH and SONIOX_API_KEY set):

    /usr/bin/python3 examples/bus_messages.py samples/sample.wav [ws://url-of-a-stand-in]
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
path = sys.argv[1] if len(sys.argv) > 1 else "samples/sample.wav"
pipeline = Gst.parse_launch(
    f'filesrc location="{path}" ! wavparse ! audioconvert ! audioresample ! '
    "sonioxstt name=stt ! fakesink"
)
if len(sys.argv) > 2:
    pipeline.get_by_name("stt").set_property("url", sys.argv[2])

pipeline.set_state(Gst.State.PLAYING)
bus = pipeline.get_bus()
last_interim = ""
while True:
    message = bus.timed_pop(Gst.CLOCK_TIME_NONE)
    if message.type == Gst.MessageType.EOS:
        break
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        print(f"error: {error.message}", file=sys.stderr)
        break
    if message.type != Gst.MessageType.ELEMENT:
        continue
    s = message.get_structure()
    name = s.get_name()
    if name == "soniox/transcript":
        if s.get_string("final"):
            print(f"final:   {s.get_string('final')!r}")
        interim = s.get_string("interim")
        if interim and interim != last_interim:
            print(f"interim: {interim!r}")
        last_interim = interim
    elif name == "soniox/endpoint":
        _, pts = s.get_uint64("pts")
        print(f"endpoint at {pts / Gst.SECOND:.3f} s: {s.get_string('text')}")
    elif name == "soniox/session":
        print(f"session {s.get_value('session')}: {s.get_string('event')}")
pipeline.set_state(Gst.State.NULL)
