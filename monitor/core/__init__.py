"""The pure SLA core: durations, calendars, policies (with early-warning thresholds, segments chosen by attributes and
status mappings), events, the order state machine, its records and the summary.

Nothing here imports Kafka, Redis, asyncio or reads a clock: instants are integers of microseconds since the
Unix epoch (UTC), passed in by the caller, so every outcome is exact and reproducible.
"""
