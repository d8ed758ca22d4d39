import typing

from services.facility.core.conversations import Conversations


def test_no_method_shadows_the_builtin_list_in_annotations():
    assert not hasattr(Conversations, "list")
    assert typing.get_type_hints(Conversations.messages)["return"] == list[dict]
    assert typing.get_type_hints(Conversations.summaries)["return"] == list[dict]
