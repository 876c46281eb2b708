"""The Kafka topics slamon reads and writes: the catalogue and schemas (`spec`) and applying them to a cluster
(`admin`, which needs aiokafka)."""

from .spec import (
    DEADLETTER,
    EVENTS,
    OUTCOMES,
    POLICIES,
    TICKS,
    WARNINGS,
    TopicsError,
    TopicSpec,
    catalogue_by_name,
    load_catalogue,
    load_schema,
    schema_path,
    topic_names,
)

__all__ = ["DEADLETTER", "EVENTS", "OUTCOMES", "POLICIES", "TICKS", "WARNINGS", "TopicSpec", "TopicsError",
           "catalogue_by_name", "load_catalogue", "load_schema", "schema_path", "topic_names"]
