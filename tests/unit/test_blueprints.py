from __future__ import annotations

import pytest

from payments.pipeline.app import App, UnknownAgent
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.topology import QueueSpec


def make_app() -> App:
    fraud, alerts = Blueprint("fraud"), Blueprint("alerts")

    @fraud.agent(QueueSpec("q.fraud"), value_type=dict, concurrency=4)
    async def score(stream, ctx) -> None:
        """Scores payments."""

    @fraud.timer(seconds=60)
    async def sweep(ctx) -> None: ...

    @alerts.agent(QueueSpec("q.alerts"), value_type=dict)
    async def watch(stream, ctx) -> None: ...

    @alerts.crontab("0 2 * * *")
    async def nightly(ctx) -> None: ...

    return App((fraud, alerts))


def test_agents_are_named_after_their_blueprint_and_function():
    app = make_app()

    assert [spec.name for spec in app.agents] == ["fraud.score", "alerts.watch"]
    assert app.agents[0].concurrency == 4
    assert app.agents[0].help == "Scores payments."
    assert [spec.name for spec in app.timers] == ["fraud.sweep"]
    assert [spec.name for spec in app.crontabs] == ["alerts.nightly"]


def test_selecting_a_blueprint_keeps_all_of_its_jobs_and_nothing_else():
    app = make_app().select(["fraud"])

    assert [spec.name for spec in app.agents] == ["fraud.score"]
    assert [spec.name for spec in app.timers] == ["fraud.sweep"]
    assert app.crontabs == []


def test_selecting_one_agent_leaves_its_blueprints_other_jobs_out():
    app = make_app().select(["alerts.watch"])

    assert [spec.name for spec in app.agents] == ["alerts.watch"]
    assert app.crontabs == []


def test_selecting_nothing_in_particular_runs_everything():
    app = make_app()

    assert app.select(None) is app


def test_an_unknown_name_is_refused_with_the_known_ones_listed():
    with pytest.raises(UnknownAgent, match=r"unknown agents: nope; known: .*fraud\.score"):
        make_app().select(["nope"])


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (lambda bp: bp.agent(QueueSpec("q"), value_type=dict, concurrency=0), "concurrency"),
        (lambda bp: bp.timer(seconds=0), "interval"),
        (lambda bp: bp.crontab("every day"), "cron"),
    ],
)
def test_a_blueprint_refuses_impossible_schedules_and_concurrency(register, message):
    with pytest.raises(ValueError, match=message):
        register(Blueprint("x"))
