"""The served deployments are well-formed (built without a server; serving needs one)."""

from __future__ import annotations

import inspect

from flows.collect import collect_flow
from flows.deployments import DRIFT_CRON, RETRAIN_CRON, deployments
from flows.drift import drift_flow
from flows.retrain import retrain_flow


def test_deployments_have_schedules_and_valid_parameters() -> None:
    by_flow = {d.flow_name: d for d in deployments()}
    assert set(by_flow) == {"retrain", "drift", "collect"}
    assert by_flow["retrain"].schedules[0].schedule.cron == RETRAIN_CRON
    assert by_flow["drift"].schedules[0].schedule.cron == DRIFT_CRON
    for flow in (retrain_flow, drift_flow):
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(by_flow[flow.name].parameters) <= accepted
    assert by_flow["collect"].schedules[0].schedule.interval.total_seconds() == 15 * 60
    # Trades and Bybit orderbook.50 recorded day by day into the lake.
    assert by_flow["collect"].parameters["book_depth"] == 50
    assert set(by_flow["collect"].parameters) <= set(inspect.signature(collect_flow.fn).parameters)
