"""Inputs: a name or a path becomes a spec (preset and native model files, HF configs, hardware and engine
profiles, scenarios, measurement files)."""
