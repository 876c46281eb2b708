"""Importers: process-mining event logs turned into the workflow events of CONTRACTS.md section 2."""
