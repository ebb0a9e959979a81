"""recdb: real-time personalized ranking inside PostgreSQL."""

__version__ = "0.1.0"
