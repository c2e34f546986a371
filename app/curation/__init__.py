"""Curated answers and datasets: what a deployment learns from its reviewers, kept as
plain messages and passages with content hashes, so it outlives any one model."""
