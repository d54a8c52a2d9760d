"""What tests (and the benchmarks) build on: private names, processes, harnesses, clients, fakes.

Test modules import from here and never from one another.
"""
