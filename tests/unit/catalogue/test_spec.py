from __future__ import annotations

import pytest

from monitor.catalogue import TopicsError, catalogue_by_name, load_catalogue, topic_names
from monitor.catalogue.spec import SCHEMAS_DIR

LOGICAL = ["workflow.events", "sla.ticks", "sla.warnings", "sla.outcomes", "sla.deadletter", "sla.policies"]


def test_catalogue_topics_and_schema_files():
    specs = load_catalogue()
    assert [s.name for s in specs] == LOGICAL
    for spec in specs:
        assert (SCHEMAS_DIR / spec.schema).is_file(), spec.schema
        assert spec.description and spec.replication == 1
        assert spec.config["cleanup.policy"] in ("delete", "compact")
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in spec.config.items())
        assert "min.insync.replicas" not in spec.config
    by = catalogue_by_name(specs)
    assert by["workflow.events"].partitions == by["sla.ticks"].partitions == 6
    assert by["sla.ticks"].copartition == "workflow.events"
    assert by["sla.ticks"].internal and int(by["sla.ticks"].config["retention.ms"]) <= 6 * 3600_000
    assert by["sla.policies"].partitions == 1
    assert by["sla.policies"].config == {"cleanup.policy": "compact", "retention.ms": "-1"}
    assert int(by["sla.deadletter"].config["retention.ms"]) >= 30 * 86400_000


@pytest.mark.parametrize("n", [1, 2, 5, 24])
def test_ticks_follow_events_partitions(monkeypatch, n):
    monkeypatch.setenv("SLAMON_PARTITIONS", "9")  # the catalogue reads no environment: the caller decides
    by = catalogue_by_name(load_catalogue(partitions=n))
    assert by["workflow.events"].partitions == by["sla.ticks"].partitions == n
    assert by["sla.policies"].partitions == 1


def test_replication_and_min_insync():
    specs = load_catalogue(replication=3)
    assert {s.replication for s in specs} == {3}
    assert all(s.config["min.insync.replicas"] == "2" for s in specs)
    assert {s.replication for s in load_catalogue(replication=2)} == {2}
    assert all("min.insync.replicas" not in s.config for s in load_catalogue(replication=2))


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_partitions_are_rejected(bad):
    with pytest.raises(TopicsError, match="partitions"):
        load_catalogue(partitions=bad)


def test_prefix():
    specs = load_catalogue(prefix="t1.")
    assert [s.name for s in specs] == ["t1." + n for n in LOGICAL]
    assert [s.logical_name for s in specs] == LOGICAL
    assert catalogue_by_name(specs)["sla.ticks"].copartition == "t1.workflow.events"
    assert topic_names("t1.") == {n: "t1." + n for n in LOGICAL}
