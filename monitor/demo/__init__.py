"""The demo (development tooling): an order generator, a live view of warnings, and the whole local run."""
