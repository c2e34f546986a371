"""Static web UI for docchat: the chat page and the source viewer (served from ``static/``)."""
