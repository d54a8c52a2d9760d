"""A payment gateway stand-in: the external world, simulated (see shared/STACK.md)."""
