"""Releases: what answers — a registered chat model, alone or with a LoRA adapter on
it — and their one lifecycle. A model and an adapter are both registered files pinned
by their hash (registry.py), measured on the gate's sets and refused when they answer
worse than what they would replace (gate.py, measure.py), put in service by hot swap,
rolled back, and kept in lineage. The engines that load a release (app/llm) know
nothing of this package: the composition root hands them what to load.
"""
