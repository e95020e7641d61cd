"""STAND-IN for RLBench (tests of metarl's RLBench plugin only): NOT RLBench. See ../README.md."""

__version__ = "stand-in"
STANDIN = True
