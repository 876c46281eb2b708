"""On-call: the Redis breach board, the Alertmanager notifier, and the shared Redis key layout."""
