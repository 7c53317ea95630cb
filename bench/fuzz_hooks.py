"""Schemathesis hooks for bench/fuzz: multibyte strings where the API expects short ASCII codes.

Region codes, credit codes, ID numbers and certificate numbers are ASCII, and code that handles
them is tempted to slice by byte offset (`&code[..4]`), which panics when the offset falls inside
a multibyte character. A string drawn at random from the schema rarely has both the right byte
length and a character boundary in the wrong place, and optional query parameters are rarely all
present at once, so the fuzzer did not find such a panic (`GET /v1/benchmark-prices` with `on`,
`right_type` and a six-byte `region_code` of two characters). These hooks make most examples:
  - query: every declared string parameter present, plain strings set to a trap (dates and
    date-times get a valid value, so the request reaches the code behind the parser);
  - path parameters and the top level of a JSON body: every string set to a trap.
A trap is a string of the byte length of a code (six bytes as two, three or four characters; the
18 characters of a credit code or ID number with a multibyte one) or random digits and capitals
mixed with two-, three- and four-byte characters. The other examples stay as the schema makes them.

Loaded by bench/fuzz through SCHEMATHESIS_HOOKS.
"""

import datetime

import schemathesis
from hypothesis import strategies as st

# Six bytes in UTF-8, as a region code has; each has a character across byte 2 or byte 4.
SIX_BYTES = ["南平", "é南1", "3é5é", "3南é", "é1南", "Ｆé1"]
# Eighteen characters (a credit code, an ID number) with a multibyte one; and short ones.
CODE_LENGTH = [
    "9135070200000000南",
    "91350702000000南1G",
    "35070219900101南23",
    "3507021990010162é4",
    "闽",
    "é",
    "35070𝟘",
]
ALPHABET = "0123456789AGXé南平闽𝟘Ｆ"

trap = st.one_of(
    st.sampled_from(SIX_BYTES),
    st.sampled_from(CODE_LENGTH),
    st.text(alphabet=ALPHABET, min_size=1, max_size=18),
)
dates = st.dates(datetime.date(2020, 1, 1), datetime.date(2035, 12, 31))


def _string_value(schema):
    """A strategy for a declared string parameter, or None to leave it as generated."""
    if not isinstance(schema, dict) or schema.get("type") != "string" or "enum" in schema:
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return dates.map(lambda d: d.isoformat())
    if fmt == "date-time":
        return dates.map(lambda d: d.isoformat() + "T02:00:00Z")
    if fmt is None:
        return trap
    return None


def _trapped_query(ctx, query):
    out = {}
    declared = set()
    for p in ctx.operation.query if ctx.operation is not None else []:
        definition = getattr(p, "definition", None) or {}
        declared.add(p.name)
        s = _string_value(definition.get("schema"))
        if s is not None:
            out[p.name] = s
        elif p.name in query:
            out[p.name] = st.just(query[p.name])
    for k, v in query.items():
        if k not in declared:
            out[k] = st.just(v)
    return st.fixed_dictionaries(out)


def _trapped(container):
    return st.fixed_dictionaries(
        {k: trap if isinstance(v, str) else st.just(v) for k, v in container.items()}
    )


def _mostly(trapped, original):
    # Two in three examples get the traps.
    return st.one_of(trapped, trapped, st.just(original))


@schemathesis.hook
def flatmap_query(ctx, query):
    if query is not None and not isinstance(query, dict):
        return st.just(query)
    return _mostly(_trapped_query(ctx, query or {}), query)


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    if not isinstance(path_parameters, dict) or not path_parameters:
        return st.just(path_parameters)
    return _mostly(_trapped(path_parameters), path_parameters)


@schemathesis.hook
def flatmap_body(ctx, body):
    if not isinstance(body, dict) or not body:
        return st.just(body)
    return _mostly(_trapped(body), body)
