"""The demo tenant and its metadata: size, types, irregularities, notebook needs."""

from __future__ import annotations

from collections import Counter

import pytest

from powerp_async._time import parse_wire
from powerp_async.errors import ConfigurationError
from powerp_async.models import AGGREGATIONS
from powerp_async.simulator import SimulatorSettings, demo_tenant, format_timestamp
from powerp_async.simulator._aggregate import _BY_NAME

from .conftest import ANCHOR_US

FIELDS = {
    "index",
    "name",
    "databaseId",
    "defaultAgg",
    "dataType",
    "unitSymbol",
    "firstDataPoint",
    "minValue",
    "maxValue",
}
TENANT = demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US))


async def test_measurements_lists_every_signal_with_all_fields(
    http, sim, token
) -> None:
    headers = {"Authorization": f"Bearer {token}"}

    async with http.get(f"{sim.base_url}/v1/measurements", headers=headers) as response:
        status = response.status
        rows = await response.json()

    assert status == 200
    assert len(rows) == len(sim.tenant.signals) == 1016
    assert all(set(row) == FIELDS for row in rows)
    assert rows[0] == {
        "index": "1",
        "name": "Globalstrahlung GHI",
        "databaseId": 1,
        "defaultAgg": "mean",
        "dataType": "float",
        "unitSymbol": "W/m²",
        "firstDataPoint": "2023-06-01T00:00:00Z",
        "minValue": 0.0,
        "maxValue": 1400.0,
    }
    assert rows[1]["index"] == "2"
    assert rows[1]["dataType"] == "float"


def test_signal_counts_by_database_and_type() -> None:
    by_database = Counter(spec.database_id for spec in TENANT.signals)
    by_type = Counter(spec.data_type.value for spec in TENANT.signals)

    assert by_database == {1: 432, 2: 231, 3: 353}
    assert by_type == {"float": 757, "string": 141, "int": 62, "bool": 56}


def test_default_aggregations_are_mixed_and_each_group_is_valid() -> None:
    by_agg = Counter(spec.default_agg for spec in TENANT.signals)

    assert by_agg == {
        "mean": 304,
        "max": 175,
        None: 165,
        "last": 143,
        "median": 115,
        "sum": 30,
        "": 27,
        "min": 26,
        "first": 25,
        "count": 6,
    }
    for spec in TENANT.signals:
        numeric = spec.data_type.value in ("float", "int")
        if spec.default_agg in ("mean", "median", "sum"):
            assert numeric, spec


def test_index_is_a_number_in_database_2_only() -> None:
    kinds = {
        (row["databaseId"], type(row["index"]).__name__) for row in _metadata_rows()
    }

    assert kinds == {(1, "str"), (2, "int"), (3, "str")}


def test_names_and_units_exercise_csv_writers() -> None:
    names = [spec.name for spec in TENANT.signals]
    units = {spec.unit_symbol for spec in TENANT.signals}

    assert 'Wechselrichter 3, "Süd" \N{EN DASH} Leistung' in names
    assert any("," in n and '"' in n and not n.isascii() for n in names)
    assert units == {
        None,
        "%",
        "A",
        "Hz",
        "V",
        "W/m²",
        "hPa",
        "kW",
        "kWh",
        "kvar",
        "m/s",
        "rpm",
        "°",
        "°C",
    }


def test_five_percent_start_recently_on_the_20_minute_grid() -> None:
    late = [spec for spec in TENANT.signals if spec.first_data_us > ANCHOR_US - 10**11]
    steps = Counter(
        (ANCHOR_US - spec.first_data_us) // (20 * 60 * 10**6) for spec in late
    )

    assert len(late) == 51
    assert set(steps) <= {1, 2, 3, 4, 5, 6}
    assert all((ANCHOR_US - s.first_data_us) % (20 * 60 * 10**6) == 0 for s in late)
    assert {
        format_timestamp(s.first_data_us) for s in TENANT.signals if s not in late
    } == {
        "2022-03-15T00:00:00Z",
        "2023-06-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
    }


def test_ten_percent_have_gaps_and_the_met_station_has_none() -> None:
    gappy = [spec for spec in TENANT.signals if spec.gap_key is not None]

    assert len(gappy) == 102
    assert all(spec.gap_key is None for spec in TENANT.signals[:9])


def test_the_seed_changes_values_but_not_the_catalogue() -> None:
    other = demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US, seed=7))
    start = parse_wire("2026-06-01T15:00:00Z")

    def values(tenant) -> list[object]:
        return [
            v for _, v in tenant.points(1, "105", "mean", start, start + 10**7, 10**6)
        ]

    assert [s.name for s in other.signals] == [s.name for s in TENANT.signals]
    assert values(other) != values(TENANT)
    assert values(demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US))) == values(TENANT)


def test_without_an_anchor_the_current_hour_is_taken() -> None:
    tenant = demo_tenant(SimulatorSettings())

    assert tenant.anchor_us % (3600 * 10**6) == 0


def test_every_flux_aggregation_is_implemented() -> None:
    assert frozenset(_BY_NAME) == AGGREGATIONS


@pytest.mark.parametrize(
    ("index", "aggregation", "message"),
    [
        (
            "1",
            "avg",
            "unknown aggregation 'avg': expected one of count, first, last, "
            "max, mean, median, min, sum",
        ),
        (
            "12",
            "median",
            "aggregation 'median' needs numbers, but signal '12' of "
            "database 1 is bool: use one of count, first, last, max, min",
        ),
    ],
)
def test_points_refuses_what_the_server_refuses(index, aggregation, message) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        TENANT.points(1, index, aggregation, 0, 10**6, 10**6)


def test_points_of_an_unknown_signal_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        TENANT.points(1, "99999", "last", 0, 10**6, 10**6)


def _metadata_rows() -> list[dict[str, object]]:
    import orjson

    rows: list[dict[str, object]] = orjson.loads(TENANT.metadata_json())
    return rows


def test_copies_repeat_the_databases_under_new_ids() -> None:
    tenant = demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US, copies=10))
    start = parse_wire("2026-06-01T15:00:00Z")
    by_database = Counter(spec.database_id for spec in tenant.signals)

    assert len(tenant.signals) == 10_160
    assert by_database[1] == by_database[28] == 432
    assert by_database[3] == by_database[30] == 353
    assert sorted(by_database) == list(range(1, 31))
    # The samples are the original's; gaps and late starts are drawn per copy.
    steady = next(
        spec
        for spec in tenant.signals
        if spec.database_id == 28
        and spec.gap_key is None
        and spec.index != "1"
        and spec.first_data_us == TENANT.signal(1, spec.index).first_data_us
    )

    def ten_seconds(tenant, database_id: int) -> list[tuple[int, object]]:
        agg = steady.default_agg or "last"
        return tenant.points(
            database_id, steady.index, agg, start, start + 10**7, 10**6
        )

    assert len(ten_seconds(TENANT, 1)) == 10
    assert ten_seconds(tenant, 28) == ten_seconds(TENANT, 1)


@pytest.mark.parametrize("copies", [0, 101, True])
def test_copies_out_of_range_are_refused(copies) -> None:
    with pytest.raises(ConfigurationError, match="copies must be"):
        SimulatorSettings(copies=copies)
