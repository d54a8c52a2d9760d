"""The catalog flow."""
