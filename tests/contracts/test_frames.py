"""One vocabulary for a fact: internal payloads and the client's event data never share a name."""

import inspect

from contracts import events, frames
from contracts.common import Shape


def shapes(module) -> set[str]:
    return {name for name, value in vars(module).items() if inspect.isclass(value) and issubclass(value, Shape)}


def test_no_class_name_means_two_things():
    """A payload of contracts.events and a client event's data are never called the same."""
    assert not shapes(events) & {cls.__name__ for cls in frames.EVENTS.values()}


def test_every_client_event_data_says_it_is_a_frame():
    """``<Name>Frame``: what a client receives."""
    assert all(cls.__name__.endswith("Frame") for cls in frames.EVENTS.values())
