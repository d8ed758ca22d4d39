"""Schemathesis hooks for test_fuzz.py: drop the one report that is the fuzzer's own mistake.

In multipart/form-data every field is text. A "type mutation" of a text field (the boolean
`false` for `body`) reaches the app as the text "false", which is a valid string: accepting it
is right. Only exactly such failures are dropped; any other mutation of a form still counts.
"""

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.mutations import OperatorKind
from schemathesis.core.parameters import ParameterLocation

# A mutation names the type it changed to; these are sent in a form as their plain text.
SCALARS = frozenset({"boolean", "integer", "number"})


def _text_fields(case) -> set[str]:
    """The names of the form's text fields (type string, not a file)."""
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    properties = content.get(case.media_type, {}).get("schema", {}).get("properties", {})
    return {
        name
        for name, schema in properties.items()
        if schema.get("type") == "string" and schema.get("format") != "binary"
    }


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure except a form's text field whose type change is only its text."""
    if not isinstance(failure, AcceptedNegativeData) or case.media_type != "multipart/form-data":
        return True
    mutations = getattr(case.meta.phase.data, "mutations", None) if case.meta else None
    if not mutations:
        return True
    text = _text_fields(case)
    return not all(
        m.operator == OperatorKind.CHANGE_TYPE
        and m.parameter_location == ParameterLocation.BODY
        and m.new_value in SCALARS
        and m.parameter in text
        for m in mutations
    )
