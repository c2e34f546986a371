"""Seeing inside: logs, metrics, traces, answer-quality monitors and alerts."""
