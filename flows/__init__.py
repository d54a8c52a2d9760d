"""Bytewax dataflows: the stateful core services. Each folder: pure ``logic.py``, wiring-only ``flow.py``."""
