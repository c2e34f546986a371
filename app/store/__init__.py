"""Persistent state: the SQL database and the vector store."""
