"""The recording lifecycle: recorder events into the recording record, and the activities that turn a
capture into sealed evidence (finalise, access copy, seal, index), orchestrated by functions/lifecycle.py."""
