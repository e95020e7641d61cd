"""STAND-IN package (tests of metarl's RLBench plugin only): NOT RLBench. See the README.md at the stand-in's root."""
