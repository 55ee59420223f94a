"""One error tree: every exception class the package defines derives from PhatError and is
drawn exactly once, under its real parent, in the tree of ``phat_runtime/errors.py``.

The test imports every module of the package, collects every ``BaseException`` subclass a
module defines, and compares them with the drawing. Internal control-flow signals and the
codec's internal carriers are allowed outside the tree only when listed in
:data:`NOT_ERRORS` and named in the docstring's "Not errors" paragraph.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import phat_runtime
from phat_runtime import errors
from phat_runtime.errors import PhatError

#: Classes that are not errors a caller can see: (module, name) → why.
NOT_ERRORS = {
    ("phat_runtime.wasm.frame", "ContractReturned"): "seal_return unwinding the wasm stack",
    ("phat_runtime.wasm.frame", "ContractTerminated"): "terminate unwinding the wasm stack",
    ("phat_runtime.runtime.execution", "_TransferFailed"): "turned into TransferFailed results",
    ("phat_runtime.codec.scale_args", "ValueProblem"): "turned into EncodeError by codec.metadata",
    ("phat_runtime.codec.scale_decode", "DataProblem"): "turned into DecodeError by codec.metadata",
}

_TREE_LINE = re.compile(r"^ {4}(?P<indent>(?:[│ ] {3})*)(?:[├└]── )?(?P<name>[A-Z]\w+)(?:\s|$)")


def all_modules() -> list[str]:
    names = [phat_runtime.__name__]
    for info in pkgutil.walk_packages(phat_runtime.__path__, prefix="phat_runtime."):
        names.append(info.name)
    return sorted(names)


def defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not just imported) in a module of the package."""
    found: dict[str, type[BaseException]] = {}
    for module_name in all_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module_name:
                found[f"{module_name}.{name}"] = obj
    return found


def drawn_tree() -> list[tuple[str, str | None]]:
    """(class name, parent name) for every node of the drawing, in order."""
    doc = errors.__doc__ or ""
    body = doc.split("The tree::", 1)[1].split("\n\n", 2)[1]
    nodes: list[tuple[str, str | None]] = []
    stack: list[str] = []
    for line in body.splitlines():
        match = _TREE_LINE.match(line)
        if not match or ("──" not in line and match["name"] != "PhatError"):
            continue  # a continuation line of a description
        depth = len(match["indent"]) // 4 + (1 if "──" in line else 0)
        del stack[depth:]
        nodes.append((match["name"], stack[-1] if stack else None))
        stack.append(match["name"])
    return nodes


def test_the_drawing_parses() -> None:
    nodes = drawn_tree()
    assert nodes[0] == ("PhatError", None)
    assert ("PolicyError", "AttestationError") in nodes and ("ScaleError", "DecodeError") in nodes
    assert len(nodes) > 40


def test_every_exception_derives_from_phat_error_or_is_a_listed_signal() -> None:
    outside = {
        qualified for qualified, cls in defined_exceptions().items()
        if not issubclass(cls, PhatError) and tuple(qualified.rsplit(".", 1)) not in NOT_ERRORS
    }
    assert not outside, f"exceptions outside PhatError (derive them or list them in errors.py): {outside}"


def test_listed_signals_exist_and_are_named_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    not_errors = doc.split("Not errors", 1)[1]
    found = defined_exceptions()
    for module, name in NOT_ERRORS:
        assert f"{module}.{name}" in found, f"{module}.{name} no longer exists: drop it from NOT_ERRORS"
        assert name in not_errors


def test_every_phat_error_is_drawn_once_under_its_real_parent() -> None:
    nodes = drawn_tree()
    names = [name for name, _ in nodes]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"drawn more than once: {duplicates}"
    classes = {cls.__name__: cls for cls in defined_exceptions().values() if issubclass(cls, PhatError)}
    assert len(classes) == len({c for c in defined_exceptions().values() if issubclass(c, PhatError)}), \
        "two PhatError classes share a name"
    assert set(classes) == set(names), (
        f"defined but not drawn: {set(classes) - set(names)}; drawn but not defined: {set(names) - set(classes)}"
    )
    for name, parent in nodes:
        if parent is not None:
            phat_bases = [b.__name__ for b in classes[name].__bases__ if issubclass(b, PhatError)]
            assert phat_bases == [parent], f"{name} is drawn under {parent} but derives from {phat_bases}"


@pytest.mark.parametrize("name", ["ScaleError", "EgressError", "RpcError", "VerificationError",
                                  "WorkerError", "EnvelopeError", "BodyError"])
def test_the_classes_issue_11_named_are_in_the_tree(name: str) -> None:
    assert name in [n for n, _ in drawn_tree()]
