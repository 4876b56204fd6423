"""Enough of the ARM template expression language to evaluate infra/azuredeploy.json without Azure.

Names, scopes and conditions are computed for given parameters; values known only while deploying (reference(),
list*()) evaluate to a Runtime placeholder. uniqueString() and guid() are stand-ins with the real result's length and alphabet,
not Azure's hash.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Runtime:
    """A value only the deployment knows (a principal id, an endpoint), named by where it comes from; so is any member of it."""

    origin: str

    def __str__(self) -> str:
        return f"<{self.origin}>"


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Call:
    function: str
    arguments: tuple[Node, ...]
    source: str


@dataclass(frozen=True)
class Member:
    target: Node
    key: Node


Node = Literal | Call | Member

_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


@lru_cache(maxsize=4096)
def parse(expression: str) -> Node:
    """The syntax tree of a template expression, given with or without its brackets."""
    text = expression[1:-1] if is_expression(expression) else expression
    tokens: list[tuple[str, Any, int]] = []
    for match in _TOKEN.finditer(text):
        string, number, name, symbol = match.groups()
        if string is not None:
            tokens.append(("str", string[1:-1].replace("''", "'"), match.start(1)))
        elif number is not None:
            tokens.append(("num", int(number), match.start(2)))
        elif name is not None:
            tokens.append(("name", name, match.start(3)))
        elif symbol is not None and symbol.strip():
            tokens.append(("sym", symbol, match.start(4)))
    position = 0

    def peek(value: str) -> bool:
        return position < len(tokens) and tokens[position][0] == "sym" and tokens[position][1] == value

    def expect(value: str) -> None:
        nonlocal position
        if not peek(value):
            raise ValueError(f"expected {value!r} in {text!r}")
        position += 1

    def primary() -> Node:
        nonlocal position
        kind, value, start = tokens[position]
        position += 1
        if kind in ("str", "num"):
            return Literal(value)
        if kind != "name":
            raise ValueError(f"unexpected {value!r} in {text!r}")
        expect("(")
        arguments: list[Node] = []
        while not peek(")"):
            arguments.append(expression_())
            if not peek(")"):
                expect(",")
        expect(")")
        end = tokens[position - 1][2] + 1
        return Call(value.lower(), tuple(arguments), text[start:end])

    def expression_() -> Node:
        nonlocal position
        node = primary()
        while peek(".") or peek("["):
            if peek("."):
                position += 1
                node = Member(node, Literal(tokens[position][1]))
                position += 1
            else:
                position += 1
                node = Member(node, expression_())
                expect("]")
        return node

    node = expression_()
    if position != len(tokens):
        raise ValueError(f"trailing text in {text!r}")
    return node


def _string(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _unique_string(*values: Any) -> str:
    digest = hashlib.sha256("|".join(map(_string, values)).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


def _format(template: str, *values: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda match: _string(values[int(match.group(1))]), template)


def _resource_id(group: Json, *values: Any) -> str:
    position = next(index for index, value in enumerate(values) if isinstance(value, str) and value.startswith("Microsoft."))
    subscription, resource_group = group["subscriptionId"], group["name"]
    if position == 2:
        subscription, resource_group = values[0], values[1]
    elif position == 1:
        resource_group = values[0]
    namespace, *types = values[position].split("/")
    names = values[position + 1:]
    assert len(types) == len(names), f"resourceId{values}: {len(types)} types, {len(names)} names"
    path = "/".join(f"{kind}/{_string(name)}" for kind, name in zip(types, names, strict=True))
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{namespace}/{path}"


_STRING_FUNCTIONS = frozenset({"replace"})


def _union(*values: Any) -> Any:
    """union() of objects (later keys win) or of arrays (each value once, in first-seen order: "duplicate values are included once")."""
    if all(isinstance(value, list) for value in values):
        merged: list[Any] = []
        for item in (item for value in values for item in value):
            if item not in merged:
                merged.append(item)
        return merged
    return {key: item for value in values for key, item in value.items()}


def subscription_scope(subscription_id: str) -> Json:
    """The scope of a subscription-level (nested) deployment: no resource group."""
    return {"id": f"/subscriptions/{subscription_id}", "name": None, "subscriptionId": subscription_id}


def resource_group(subscription_id: str, name: str, location: str = "westeurope") -> Json:
    return {"id": f"/subscriptions/{subscription_id}/resourceGroups/{name}", "name": name, "location": location,
            "subscriptionId": subscription_id}


@dataclass
class Environment:
    """One template (the main one or an inner-scoped nested one), its parameter values, and the copy indexes in force."""

    template: Json
    parameters: Json
    group: Json
    copy_indexes: dict[str | None, int] = field(default_factory=dict)
    # A variable's value does not depend on copy indexes (ARM allows copyIndex() in a variable only inside its own copy).
    variable_values: dict[str, Any] = field(default_factory=dict)

    def looping(self, loop: str | None, index: int) -> Environment:
        return Environment(self.template, self.parameters, self.group, {**self.copy_indexes, loop: index}, self.variable_values)

    def value(self, value: Any) -> Any:
        """A template value with every expression in it evaluated."""
        if is_expression(value):
            return self.evaluate(parse(value))
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def evaluate(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Member):
            target, key = self.evaluate(node.target), self.evaluate(node.key)
            return Runtime(f"{target.origin}.{key}") if isinstance(target, Runtime) else target[key]
        if node.function == "if":  # only the branch taken is evaluated, as in ARM
            condition, then, otherwise = node.arguments
            return self.evaluate(then if self.evaluate(condition) else otherwise)
        values = [self.evaluate(argument) for argument in node.arguments]
        if node.function == "reference" or node.function.startswith("list"):
            return Runtime(f"{node.function}({', '.join(map(_string, values))})")
        if node.function in _STRING_FUNCTIONS and any(isinstance(value, Runtime) for value in values):
            return Runtime(f"{node.function}({', '.join(map(_string, values))})")  # a string made from a deployment-time value
        return self._functions()[node.function](*values)

    def _parameter(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        return self.value(self.template["parameters"][name]["defaultValue"])

    def _variable(self, name: str) -> Any:
        if name not in self.variable_values:
            variables = self.template.get("variables", {})
            loops = {entry["name"]: entry for entry in variables.get("copy", [])}
            if name in loops:
                count = self.value(loops[name]["count"])
                value = [self.looping(name, index).value(loops[name]["input"]) for index in range(count)]
            else:
                value = self.value(variables[name])
            self.variable_values[name] = value
        return self.variable_values[name]

    def _copy_index(self, *values: Any) -> int:
        loop = values[0] if values and isinstance(values[0], str) else None
        offset = values[-1] if values and isinstance(values[-1], int) else 0
        return self.copy_indexes[loop] + offset

    def _functions(self) -> dict[str, Callable[..., Any]]:
        return {
            "parameters": self._parameter,
            "variables": self._variable,
            "copyindex": self._copy_index,
            "resourcegroup": lambda: self.group,
            "resourceid": lambda *values: _resource_id(self.group, *values),
            "subscriptionresourceid": lambda kind, *names: (
                f"/subscriptions/{self.group['subscriptionId']}/providers/{kind}/{'/'.join(map(_string, names))}"),
            "format": _format,
            "take": lambda value, count: value[:max(count, 0)],
            "uniquestring": _unique_string,
            "guid": lambda *values: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(_string, values)))),
            "split": lambda value, separator: value.split(separator),
            "last": lambda value: value[-1],
            "join": lambda values, separator: separator.join(map(_string, values)),
            "length": len,
            "empty": lambda value: not value,
            "not": lambda value: not value,
            "and": lambda *values: all(values),
            "string": _string,
            "createobject": lambda *values: dict(zip(values[::2], values[1::2], strict=True)),
            "union": _union,
            "subscription": lambda: {"id": f"/subscriptions/{self.group['subscriptionId']}", "subscriptionId": self.group["subscriptionId"]},
            "equals": lambda left, right: left == right,
            "or": lambda *values: any(values),
            "true": lambda: True,
            "false": lambda: False,
            "bool": lambda value: value if isinstance(value, bool) else str(value).lower() == "true",
            "null": lambda: None,
            "replace": lambda value, old, new: value.replace(old, new),
        }


def deployed_resources(environment: Environment, *, only_deployed: bool = False) -> Iterator[tuple[Environment, Json]]:
    """Every resource instance (copies expanded), nested templates included, each with the environment it is evaluated in;
    with `only_deployed`, only those whose condition (and whose nested deployment's) holds."""
    for resource in environment.template.get("resources", []):
        loop = resource.get("copy")
        indexes = range(environment.value(loop["count"])) if loop else [None]
        for index in indexes:
            here = environment if index is None else environment.looping(None, index).looping(loop["name"], index)
            if only_deployed and not here.value(resource.get("condition", True)):
                continue
            yield here, resource
            if resource["type"] == "Microsoft.Resources/deployments":
                yield from deployed_resources(nested(here, resource), only_deployed=only_deployed)


def nested(environment: Environment, deployment: Json) -> Environment:
    """The environment of an inner-scoped nested deployment: its parameters as passed, its subscription and resource group."""
    properties = deployment["properties"]
    values = {name: environment.value(entry["value"]) for name, entry in properties["parameters"].items()}
    subscription = environment.value(deployment.get("subscriptionId", environment.group["subscriptionId"]))
    if "resourceGroup" not in deployment and properties["template"]["$schema"].endswith("/subscriptionDeploymentTemplate.json#"):
        return Environment(properties["template"], values, subscription_scope(subscription))
    group_name = environment.value(deployment.get("resourceGroup", environment.group["name"]))
    return Environment(properties["template"], values, resource_group(subscription, group_name))


def assert_mutation_caught(template: Json, mutate: Callable[[Json], None], check: Callable[[Json], None]) -> None:
    """A template test's rule holds on the template and fails on a copy the mutation broke (the rule can fail)."""
    check(template)
    broken = copy.deepcopy(template)
    mutate(broken)
    assert broken != template, "the mutation changed nothing"
    try:
        check(broken)
    except AssertionError:
        return
    raise AssertionError(f"{getattr(check, '__name__', check)} still holds on the broken copy")


def edit(select: Callable[[Json], Json], key: str, value: Any) -> Callable[[Json], None]:
    """A mutation: set `key` of the node `select` finds to `value`, or delete it when `value` is `...`."""
    def mutate(template: Json) -> None:
        node = select(template)
        if value is ...:
            del node[key]
        else:
            node[key] = value
    return mutate
