"""Verbatim: policy-based compliance recording for Microsoft Teams (the domain and its adapters)."""

__version__ = "0.1.0"
