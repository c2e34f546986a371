"""Retrieval-augmented answering: retrieve, build the prompt, generate, cite."""
