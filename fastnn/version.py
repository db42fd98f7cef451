"""fastnn's version, in a module of its own that the rest can import."""

__version__ = "0.1.0"
