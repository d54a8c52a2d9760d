"""The users flow."""
