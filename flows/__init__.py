"""Shopstream flows."""
