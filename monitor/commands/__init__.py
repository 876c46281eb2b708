"""One thin module per `slamon` sub-command: its flags, then one call into the package."""
