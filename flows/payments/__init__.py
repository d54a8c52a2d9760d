"""Payments through the gateway port."""
