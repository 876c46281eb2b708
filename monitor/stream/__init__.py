"""The live monitor: the core adapted to Faust (topics, order table, agent, ticks, deadline index, metrics)."""
