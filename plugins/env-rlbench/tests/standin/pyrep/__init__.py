"""STAND-IN for PyRep (tests of metarl's RLBench plugin only): NOT PyRep. See ../README.md."""

__version__ = "stand-in"
STANDIN = True
