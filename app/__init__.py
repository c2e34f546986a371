"""docchat: a self-hosted documentation chatbot."""

__version__ = "0.1.0"
