"""Measuring docchat: retrieval (are the right passages found?) and answers (does the
model say what the docs say, cite them, and refuse what they do not cover?)."""
