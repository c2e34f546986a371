"""What both `app` and `ingest` need, below both: nothing here imports either."""
