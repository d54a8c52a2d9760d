"""Shopstream sinks."""
