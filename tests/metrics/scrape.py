"""Read /metrics the way Prometheus does, for the tests."""

from prometheus_client.parser import text_string_to_metric_families


def scrape(client, **headers) -> dict:
    """Return {(sample name, frozenset of labels): value} from GET /metrics (which must be 200)."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """Return one sample's value, 0 if it is not there yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)
