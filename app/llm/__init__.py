"""The models: llama.cpp for answers, sentence-transformers for embeddings."""
