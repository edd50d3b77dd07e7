"""multi's `calculate_output`, evaluated without eval: the formula is parsed with `ast` and
walked by a small interpreter that knows only numbers, the sub-graders' names, arithmetic
(+ - * / // % and ** or ^ for power, as OpenAI writes it), comparisons, and the functions in
FUNCTIONS. Anything else (attributes, subscripts, lambdas, other names) is refused when the
grader is validated."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "log": math.log,
    "round": round,
}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
# A power this large already overflows a float; refusing it keeps the formula cheap.
_MAX_EXPONENT = 1024
# A formula combines a handful of sub-graders: these bounds are far above any real one, and keep
# parsing and the recursive evaluation cheap and clear of Python's recursion limit.
MAX_LENGTH = 4096
MAX_NODES = 1000
MAX_DEPTH = 64


class FormulaError(ValueError):
    pass


def parse_formula(text: str, names: Iterable[str]) -> ast.Expression:
    """The formula's tree; FormulaError says what is not allowed or not known."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    try:
        # "^" is power in OpenAI's formulas, with power's precedence: rewritten before parsing
        # (Python's ^ would bind looser than + and *).
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as e:
        raise FormulaError(f"not a formula ({e.msg})") from None
    except (RecursionError, MemoryError):
        raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels") from None
    _check_size(tree)
    known = set(names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in known and node.id not in FUNCTIONS:
                raise FormulaError(f"unknown name '{node.id}'; the graders are {sorted(known)}")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                raise FormulaError(f"only the functions {sorted(FUNCTIONS)} may be called")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise FormulaError(f"only numbers may appear as constants, not {node.value!r}")
        elif not isinstance(
            node,
            (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Load, *_BINARY, *_UNARY, *_COMPARE),
        ):
            raise FormulaError(f"'{type(node).__name__}' is not allowed in a formula")
    return tree


def _check_size(tree: ast.Expression) -> None:
    """Bounds the tree's size and depth without recursing (a deep tree is what is refused)."""
    nodes, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels")
        if nodes > MAX_NODES:
            raise FormulaError(f"the formula has more than {MAX_NODES} parts")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def evaluate(tree: ast.Expression, values: dict[str, float]) -> float:
    return float(_eval(tree.body, values))


def _eval(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise FormulaError(f"exponent {right} is too large")
        return _BINARY[type(node.op)](float(left), float(right))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, values)
            if not _COMPARE[type(op)](left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, values) else node.orelse, values)
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise FormulaError(f"'{type(node).__name__}' is not allowed in a formula")
