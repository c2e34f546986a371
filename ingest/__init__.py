"""Document ingestion: load files, clean them, chunk, embed and store them."""
