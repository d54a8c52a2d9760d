"""Shopstream topology."""
