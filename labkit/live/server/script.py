"""A scripted model: what the simulated model does, turn by turn or by rule, instead of the workload's filler.

A :class:`Script` holds ``turns`` (the model's responses of a conversation in order: turn 0 answers the first
request, turn *k* the request after *k* model responses) and ``rules`` (checked first, the first that matches
wins: on the turn number, a user message, a tool output, any new input text). Each says what the model does,
a :class:`Step`: call tools with these arguments (checked against the request's ``parameters`` schema), say a
text, reason first, fail with a status and code, stall, drop the connection, end ``incomplete``.

Timing still follows the profile: the step's items are sized and paced like the workload's (the texts' estimated
tokens feed the latency model). A request the script cannot answer (no rule matches and its turns are used up,
a tool the request does not offer, arguments its schema rejects) gets an ``error`` with code ``script_mismatch``
naming the turn and the reason, and a warning in the server log (``labkit.live.server``).

From Python, ``SimServer(script=Script(turns=[Step(calls=(Call("run_tests", {"path": "tests/"}),)),
Step(say="fixed")]))``; from a file, ``labkit serve --script FILE.yaml`` (:meth:`Script.from_file`)::

    turns:
      - call: {run_tests: {path: tests/}}
      - say: fixed
    rules:
      - when: {tool_output: FAILED}
        then: {call: {run_tests: {path: tests/}}}
      - when: {turn: 3}
        then: {fail: {status: 500, code: server_error}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.live.server.output import ItemPlan, OutputPlan, _encrypted
from labkit.wire.protocol import CreateRequest, ProtocolError, is_model_output, split_tokens
from labkit.wire.tokens import filler_text

if TYPE_CHECKING:
    from labkit.live.server.faults import TurnFaults

log = logging.getLogger("labkit.live.server")

__all__ = ["Call", "Failure", "Rule", "Script", "ScriptError", "Step", "When", "load_script"]

#: The event a scripted ``drop`` cuts the connection after (``response.created`` and ``.in_progress`` go out).
DROP_AFTER_EVENTS = 2


class ScriptError(ValueError):
    """A script that cannot be loaded (the message names the file or field)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One function call: the tool's name and its arguments (an object, or a JSON string as the API sends)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed turn: an HTTP status and the API's error ``code`` (``stream=True``: ``response.failed`` mid-stream)."""

    status: int = 500
    code: str = "server_error"
    message: str = "The server had an error while processing your request."
    stream: bool = False

    def error(self) -> ProtocolError:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return ProtocolError(self.code, self.message, None, status=self.status, type=kind)


@dataclass(frozen=True, slots=True)
class Step:
    """What the model does in one turn. Several at once are allowed: reason, then say, then call."""

    say: str | None = None
    calls: tuple[Call, ...] = ()
    #: Reasoning tokens before the answer (0: none).
    reason: int = 0
    fail: Failure | None = None
    #: Seconds of extra wait before the first output delta.
    stall_s: float = 0.0
    #: Cut the connection after ``response.created`` (no close frame).
    drop: bool = False
    #: End ``response.incomplete`` (``reason: max_output_tokens``).
    incomplete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "say": self.say,
            "calls": [c.to_dict() for c in self.calls],
            "reason": self.reason,
            "fail": None if self.fail is None else vars_of(self.fail),
            "stall_s": self.stall_s,
            "drop": self.drop,
            "incomplete": self.incomplete,
        }


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


@dataclass(frozen=True, slots=True)
class When:
    """A rule's condition; every field given must hold. Texts match as substrings of the request's new input (the
    items after the model's last output: a client that resends the whole history is matched on what it added)."""

    #: The turn index (model responses before this one in the conversation).
    turn: int | None = None
    #: Text of a user message in the new input.
    user: str | None = None
    #: Output of a ``function_call_output`` in the new input.
    tool_output: str | None = None
    #: Any text in the new input (messages and tool outputs).
    input: str | None = None

    def matches(self, request: CreateRequest, turn: int) -> bool:
        if self.turn is not None and self.turn != turn:
            return False
        if self.user is not None and not any(self.user in t for t in _texts(request, "user")):
            return False
        if self.tool_output is not None and not any(self.tool_output in t for t in _texts(request, "tool")):
            return False
        return self.input is None or any(self.input in t for t in _texts(request, "any"))


@dataclass(frozen=True, slots=True)
class Rule:
    when: When
    then: Step


@dataclass(frozen=True, slots=True)
class Script:
    """Turns in order, and rules checked before them (the first that matches wins)."""

    turns: tuple[Step, ...] = ()
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        if not self.turns and not self.rules:
            raise ScriptError("script: needs at least one turn or rule")

    def step_for(self, request: CreateRequest, turn: int) -> Step:
        """This request's step; raises :class:`ProtocolError` (``script_mismatch``) naming the turn and why."""
        for rule in self.rules:
            if rule.when.matches(request, turn):
                return rule.then
        if turn < len(self.turns):
            return self.turns[turn]
        raise mismatch(turn, f"no rule matches and the script has {len(self.turns)} turns")

    def apply(self, request: CreateRequest, turn: int, planned: OutputPlan, faults: TurnFaults) -> OutputPlan:
        """The turn's output as the script says (replacing the workload's ``planned``); faults join ``faults``."""
        step = self.step_for(request, turn)
        if step.fail is not None and not step.fail.stream:
            log.info("labkit server: script: turn %d fails with %d %s", turn, step.fail.status, step.fail.code)
            raise step.fail.error()
        plan = faults.plan
        faults.plan = plan._replace(
            stall_s=plan.stall_s + step.stall_s,
            fail=plan.fail or step.fail is not None,
            drop_at_event=DROP_AFTER_EVENTS if step.drop else plan.drop_at_event,
        )
        return _output(step, request, turn, planned)

    @classmethod
    def from_dict(cls, data: Any, where: str = "script") -> Script:
        if not isinstance(data, Mapping):
            raise ScriptError(f"{where}: must be a mapping with 'turns' and/or 'rules'")
        unknown = set(data) - {"turns", "rules"}
        if unknown:
            raise ScriptError(f"{where}: unknown key {sorted(unknown)[0]!r} (expected 'turns', 'rules')")
        turns = tuple(_step(s, f"{where}.turns[{i}]") for i, s in enumerate(_list(data.get("turns"), where)))
        rules = tuple(_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(_list(data.get("rules"), where)))
        if not turns and not rules:
            raise ScriptError(f"{where}: needs at least one turn or rule")
        return cls(turns, rules)

    @classmethod
    def from_file(cls, path: str | Path) -> Script:
        """A script from a YAML (or JSON) file; errors name the file (:func:`labkit.live.scriptfile.read_script`)."""
        from labkit.live.scriptfile import read_script

        return read_script(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": [s.to_dict() for s in self.turns],
            "rules": [{"when": vars_of(r.when), "then": r.then.to_dict()} for r in self.rules],
        }


def load_script(script: Script | Mapping[str, Any] | str | Path) -> Script:
    """A :class:`Script` from itself, a mapping, or a file path."""
    if isinstance(script, Script):
        return script
    if isinstance(script, Mapping):
        return Script.from_dict(script)
    return Script.from_file(script)


def mismatch(turn: int, why: str) -> ProtocolError:
    message = f"script: turn {turn}: {why}"
    log.warning("labkit server: %s", message)
    return ProtocolError("script_mismatch", message, None, status=400)


# -- building the output --------------------------------------------------------------------------------------


def _output(step: Step, request: CreateRequest, turn: int, planned: OutputPlan) -> OutputPlan:
    items: list[ItemPlan] = []
    if step.say is not None:
        items.append(ItemPlan("message", tuple(split_tokens(step.say))))
    tools = {str(t.get("name")): t for t in request.tools if t.get("type") == "function"}
    for call in step.calls:
        tool = tools.get(call.name)
        if tool is None:
            offered = ", ".join(sorted(tools)) or "none"
            raise mismatch(turn, f"calls {call.name!r}, which the request does not offer (function tools: {offered})")
        args = call.arguments_json()
        problem = _arguments_problem(args, tool.get("parameters"))
        if problem is not None:
            raise mismatch(turn, f"arguments of {call.name!r} do not fit its parameters: {problem}")
        items.append(ItemPlan("function_call", tuple(split_tokens(args)), name=call.name))
    if not items:
        items.append(ItemPlan("message", tuple(split_tokens("ok"))))
    reasoning = _reasoning(step, request, turn) if request.generate else None
    return OutputPlan(reasoning, tuple(items), step.reason if reasoning else 0, step.incomplete)


def _reasoning(step: Step, request: CreateRequest, turn: int) -> ItemPlan | None:
    if step.reason <= 0:
        return None
    opts = request.extra.get("reasoning")
    summary = isinstance(opts, dict) and bool(opts.get("summary") or opts.get("generate_summary"))
    encrypted = "reasoning.encrypted_content" in (request.extra.get("include") or ())
    tokens = tuple(split_tokens(filler_text(max(1, step.reason // 8), turn + 3))) if summary else ()
    return ItemPlan(
        "reasoning",
        tokens,
        summary=summary,
        encrypted_content=_encrypted(step.reason, turn) if encrypted else None,
    )


# -- JSON Schema, the subset tool parameters use ----------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _arguments_problem(arguments: str, schema: Any) -> str | None:
    try:
        value = json.loads(arguments)
    except ValueError:
        return "not valid JSON"
    return _schema_problem(value, schema, "arguments") if isinstance(schema, dict) else None


def _type_ok(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        py = _TYPES.get(str(k))
        if py is None:
            return True
        if isinstance(value, py) and not (isinstance(value, bool) and k in ("integer", "number")):
            return True
    return False


def _schema_problem(value: Any, schema: dict[str, Any], path: str) -> str | None:
    """The first way ``value`` breaks ``schema`` (type, enum, required, properties, additionalProperties, items)."""
    if "type" in schema and not _type_ok(value, schema["type"]):
        return f"{path}: expected {schema['type']}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                return f"{path}: missing required property {name!r}"
        for name, sub in value.items():
            if name in props:
                problem = _schema_problem(sub, props[name], f"{path}.{name}") if isinstance(props[name], dict) else None
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return f"{path}: unexpected property {name!r}"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, element in enumerate(value):
            if problem := _schema_problem(element, schema["items"], f"{path}[{i}]"):
                return problem
    return None


# -- reading the input ------------------------------------------------------------------------------------------


def _part_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _new_items(request: CreateRequest) -> tuple[dict[str, Any], ...]:
    """What this request adds: the items after the model's last output (a full history repeats the rest)."""
    last = max((i for i, item in enumerate(request.input) if is_model_output(item)), default=-1)
    return request.input[last + 1 :]


def _texts(request: CreateRequest, kind: str) -> list[str]:
    out = []
    for item in _new_items(request):
        t = item.get("type", "message")
        if t == "message" and kind in ("user", "any") and (item.get("role") == "user" or kind == "any"):
            out.append(_part_text(item.get("content")))
        elif t == "function_call_output" and kind in ("tool", "any"):
            out.append(_part_text(item.get("output")))
    return out


# -- loading ------------------------------------------------------------------------------------------------------

_STEP_KEYS = frozenset({"say", "call", "calls", "reason", "fail", "stall_s", "drop", "incomplete"})


def _list(value: Any, where: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ScriptError(f"{where}: 'turns' and 'rules' must be lists")
    return value


def _calls(data: Mapping[str, Any], where: str) -> tuple[Call, ...]:
    calls: list[Call] = []
    single = data.get("call")
    if single is not None:
        if not isinstance(single, Mapping) or not single:
            raise ScriptError(f"{where}.call: must map a tool name to its arguments")
        calls += [Call(str(name), args if args is not None else {}) for name, args in single.items()]
    for i, c in enumerate(data.get("calls") or ()):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise ScriptError(f"{where}.calls[{i}]: needs a 'name' (and 'arguments')")
        calls.append(Call(c["name"], c.get("arguments") or {}))
    for i, c in enumerate(calls):
        if not isinstance(c.arguments, Mapping | str):
            raise ScriptError(f"{where}.calls[{i}].arguments: must be an object or a JSON string")
    return tuple(calls)


def _step(data: Any, where: str) -> Step:
    if isinstance(data, str):
        return Step(say=data)
    if not isinstance(data, Mapping):
        raise ScriptError(f"{where}: must be a mapping (say, call, calls, reason, fail, stall_s, drop, incomplete)")
    unknown = set(data) - _STEP_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    fail = data.get("fail")
    if fail is not None:
        if fail is True:
            fail = {}
        if not isinstance(fail, Mapping):
            raise ScriptError(f"{where}.fail: must be true or a mapping (status, code, message, stream)")
        try:
            fail = Failure(**fail)
        except TypeError as exc:
            raise ScriptError(f"{where}.fail: {exc}") from None
    say = data.get("say")
    if say is not None and not isinstance(say, str):
        raise ScriptError(f"{where}.say: must be a string")
    reason = data.get("reason", 0)
    reason = 256 if reason is True else reason
    if not isinstance(reason, int) or reason < 0:
        raise ScriptError(f"{where}.reason: must be true or a number of tokens >= 0")
    return Step(
        say=say,
        calls=_calls(data, where),
        reason=reason,
        fail=fail,
        stall_s=float(data.get("stall_s", 0.0)),
        drop=bool(data.get("drop", False)),
        incomplete=bool(data.get("incomplete", False)),
    )


def _rule(data: Any, where: str) -> Rule:
    if not isinstance(data, Mapping) or "when" not in data or "then" not in data:
        raise ScriptError(f"{where}: needs 'when' and 'then'")
    when = data["when"]
    if not isinstance(when, Mapping):
        raise ScriptError(f"{where}.when: must be a mapping (turn, user, tool_output, input)")
    try:
        cond = When(**when)
    except TypeError as exc:
        raise ScriptError(f"{where}.when: {exc}") from None
    return Rule(cond, _step(data["then"], f"{where}.then"))
