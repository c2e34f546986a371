"""The chat service: one answer from question to stored message, as typed events."""
