"""Nonlinearity specs are data: the grammar, the checks on φ, the verified cache, the CLI."""

import hashlib
import importlib.util
import math
import os
import py_compile
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import special, stats

from limitsim import nonlinearity
from limitsim._codegen import ScalarFunction, render_module
from limitsim.nonlinearities._expression import MAX_LENGTH, MAX_NESTING, MAX_NODES, parse_expression

ROOT = Path(__file__).resolve().parent.parent
x = sp.Symbol("x", real=True)


# ------------------------------------------------------------------ grammar
@pytest.mark.parametrize(
    "text, expected",
    [
        ("x*erf(x)", x * sp.erf(x)),
        ("Abs(x)**1.5", sp.Abs(x) ** sp.Float(1.5)),
        ("abs(x)", sp.Abs(x)),
        ("-x + 2*x**2/3", -x + sp.Rational(2, 3) * x**2),
        ("log(1 + exp(x))", sp.log(1 + sp.exp(x))),
        ("Max(x, 0.1*x)", sp.Max(x, sp.Float(0.1) * x)),
        ("E**x", sp.exp(x)),
        ("x*exp(-x**2/2)/sqrt(2*pi)", x * sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)),
        ("x**(1/3)", x ** sp.Rational(1, 3)),
        ("  +x  ", x),
    ],
)
def test_grammar_builds_the_expression(text, expected):
    assert parse_expression(text, x) == expected


@pytest.mark.parametrize(
    "spec, reference, derivative",
    [
        ("log(1 + exp(x))", lambda t: np.logaddexp(0, t), special.expit),
        ("x/(1 + exp(-x))", lambda t: t * special.expit(t), None),
        ("x*exp(-x**2/2)/sqrt(2*pi)", lambda t: t * stats.norm.pdf(t), None),
        ("sqrt(1 + x**2)", lambda t: np.hypot(1, t), lambda t: t / np.hypot(1, t)),
        ("Max(x, 0)", lambda t: np.maximum(t, 0), lambda t: (t > 0).astype(float)),
        ("2**x", np.exp2, lambda t: np.log(2) * np.exp2(t)),
        ("atan(x) - erfc(x)/cosh(x)", lambda t: np.arctan(t) - special.erfc(t) / np.cosh(t), None),
    ],
)
def test_user_expressions_match_independent_formulas(spec, reference, derivative):
    t = np.linspace(-6.1, 5.9, 41)  # avoids the kink of Max at 0
    phi = nonlinearity(spec)
    np.testing.assert_allclose(phi(t), reference(t), rtol=1e-13, atol=1e-15)
    if derivative is not None:
        np.testing.assert_allclose(phi.derivative(t), derivative(t), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("[x]", r"the character '\[' is not allowed"),
        ("[i for i in x]", r"the character '\['"),
        ("x^2", r"'\^' \(write x\*\*2 for a power\)"),
        ("x.real", "attribute access is not allowed"),
        ("x.__class__", "attribute access"),
        ("exp.__globals__", "attribute access"),
        ("__import__(x)", "the function '__import__' is not allowed"),
        ("eval(x)", "the function 'eval'"),
        ("getattr(x, x)", "the function 'getattr'"),
        ("sympify(x)", "the function 'sympify'"),
        ("sum(x for x in x)", "the function 'sum'"),
        ("Max(x for x in x)", "a generator expression"),
        ("(lambda: x)()", "the character ':'"),
        ("lambda x", "not a parsable expression"),
        ("x if x else 1", "a conditional expression"),
        ("x and 1", "'and'/'or'"),
        ("x, 1", "a tuple"),
        ("x // 2", "'//'"),
        ("Max(*x)", r"\* unpacking"),
        ("'x'", 'the character "\'"'),
        ('f"{x}"', "the character '\"'"),
        ("x # comment", "the character '#'"),
        ("x\n+1", r"the character '\\n'"),
        ("ｘ", "the character 'ｘ'"),
        ("exp(x, x)", "exp takes 1 argument"),
        ("zoo*x", "the name 'zoo'"),
        ("oo*x", "the name 'oo'"),
        ("nan*x", "the name 'nan'"),
        ("I*x", "the name 'I'"),
        ("x*y", "single variable x"),
        ("tan(x)", "the function 'tan'"),
        ("x**10**10", r"the exponent 1e\+10 \(more than 64"),
        ("x**65", "the exponent 65"),
        ("2**(x**100)", "the exponent 100"),
        ("1e400*x", "beyond the float64 range"),
        ("(9**64)**64*x", "beyond the float64 range"),
        ("x/0", r"zoo\*x \(not a finite real number\) is not allowed"),
        ("1/0", r"zoo \(not a finite real number\)"),
        ("sqrt(-x**2)", r"I\*Abs\(x\) \(not a finite real number\)"),
        ("log(-1)*x", "not a finite real number"),
        ("True*x", "the constant True"),
        ("1j*x", "the constant 1j"),
        ("x" * (MAX_LENGTH + 1), f"more than {MAX_LENGTH}"),
        ("exp(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1), "nested more than"),
        ("-" * 900 + "x", "nested more than"),
        ("Max(" + ",".join(["x"] * MAX_NODES) + ")", f"more than {MAX_NODES} terms"),
    ],
)
def test_refused_specs_name_what_was_refused(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        nonlinearity(spec)
    message = str(info.value)
    # the message lists what is allowed (the grammar) or, for long specs, the limit
    assert "the functions Abs, Heaviside" in message or "characters" in message


# ------------------------------------------------------------------ injection
def _payloads(marker):
    m = str(marker)
    return [
        f"__import__('os').system('touch {m}') + x",
        f'x#"""; import os; os.system("touch {m}")#',
        f"x#'''; import os; os.system('touch {m}')#",
        f"exp(x).__class__.__init__.__globals__['os'].system('touch {m}')",
        f"x + (lambda: __import__('os').system('touch {m}'))()",
        f"[__import__('os').system('touch {m}') for _ in (1,)][0]*0 + x",
        f"x if __import__('os').system('touch {m}') else x",
        f"f\"{{__import__('os').system('touch {m}')}}\" and x",
        f"__builtins__.exec(\"import os; os.system('touch {m}')\")",
        f"sympify(\"__import__('os').system('touch {m}')\")",
        "__import__(chr(111)+chr(115)).system(chr(116)+chr(114)+chr(117)+chr(101))*0+x",
        f"x\n__import__('os').system('touch {m}')",
    ]


def test_injection_payloads_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    for payload in _payloads(marker):
        with pytest.raises(ValueError, match=r"not allowed|not a parsable"):
            nonlinearity(payload)
        assert not marker.exists(), payload


# ------------------------------------------------------------------ checks on φ
@pytest.fixture(scope="module")
def warm():
    nonlinearity("x*erf(x)")  # imports sympy and mpmath once


@pytest.mark.parametrize(
    "spec, match",
    [
        ("log(x)", r"log\(x\) needs a positive argument"),
        ("exp(x**2)", r"grows faster than exp\(15\|x\|\): φ\(100\)"),
        ("1/x", "1/x needs x ≠ 0"),
        ("sqrt(x)", "needs x ≥ 0"),
        ("1/(x - 0.123)", "needs x - 0.123 ≠ 0"),
        ("x**x", "needs x > 0"),
        ("Abs(x)**0.5", r"φ′\(x\) = .* needs Abs\(x\) > 0"),
        ("Heaviside(x)", "contains a Dirac delta"),
        ("x*sign(x)", "contains a Dirac delta"),
        ("exp(exp(x))", "an intermediate overflows"),
        ("exp(14.5*x)", r"φ\(49\) = nan is not a finite float64"),
        ("exp(x**2)*erfc(Abs(x))", r"φ\(-50\) = nan is not a finite float64"),
        ("exp(2e-8*x**2)", r"grows faster than exp\(15\|x\|\): φ\(1e\+09\)"),
    ],
)
def test_inadmissible_phi_is_refused_fast(warm, spec, match):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        nonlinearity(spec)
    assert time.perf_counter() - started < 1.0
    assert "E φ(z)φ(z′)" in str(info.value)  # the rule is stated


def test_growth_rule_boundaries():
    """Accepted: exp(14x) (finite in float64 on |x| ≤ 50) and exp(1e-8 x²) (finite
    expectations for variances below 1/(4·1e-8)); refused: exp(2e-8 x²) (tested above)."""
    for spec in ("exp(14*x)", "exp(1e-8*x**2)", "exp(-x**2)", "x**64", "1/(1 + x**2)"):
        nonlinearity(spec)


def test_second_derivative_kept_only_where_checked():
    # φ″ = 1e-300 (x² + 1e-300)^(-3/2) is 1e-300/0 at x = 0 in float64; φ and φ′ are finite
    phi = nonlinearity("sqrt(x**2 + 1e-300)")
    assert phi.d2phi is None
    t = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(phi.derivative(t), np.sign(t), rtol=1e-15)
    assert nonlinearity("log(1 + exp(x))").d2phi is not None


# ------------------------------------------------------------------ generated modules
def _render(functions, origin="o", docstring="d"):
    return render_module(functions, origin=origin, how="h", docstring=docstring)


def test_codegen_refuses_text_it_would_paste():
    doc_escape = 'x"""; import os; os.system("touch pwned")#'
    with pytest.raises(ValueError, match="may not contain quotes"):
        _render([], docstring=doc_escape)
    with pytest.raises(ValueError, match="may not contain quotes"):
        _render([ScalarFunction("f", (x,), (x,), doc_escape)])
    with pytest.raises(ValueError, match="single lines"):
        _render([], origin="o\nimport os")
    with pytest.raises(sp.SympifyError):  # strings are never parsed
        _render([ScalarFunction("f", (x,), ("x + 1",), "d")])


def _build_in_subprocess(cache, code):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LIMITSIM_CACHE_DIR=str(cache))
    script = f"import limitsim\nphi = limitsim.nonlinearity('x*tanh(x)')\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_tampered_cache_is_rewritten_and_never_run(tmp_path):
    cache = tmp_path / "cache"
    first = _build_in_subprocess(cache, "")
    assert first.returncode == 0, first.stderr
    (path,) = (cache / "expressions").glob("expr_*.py")
    genuine = path.read_bytes()
    assert path.stem == "expr_" + hashlib.sha256(genuine).hexdigest()[:20]

    marker, marker_pyc = tmp_path / "pwned", tmp_path / "pwned_pyc"
    path.write_bytes(genuine + f"\nimport os\nos.system('touch {marker}')\n".encode())
    # a bytecode file that Python's own loader would run without looking at the source
    evil = tmp_path / "evil.py"
    evil.write_text(f"import os\nos.system('touch {marker_pyc}')\n")
    pyc = importlib.util.cache_from_source(str(path))
    py_compile.compile(
        str(evil), cfile=pyc, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )

    second = _build_in_subprocess(cache, "print(phi.phi(1.0))")
    assert second.returncode == 0, second.stderr
    assert float(second.stdout) == pytest.approx(math.tanh(1.0), rel=1e-15)
    assert not marker.exists() and not marker_pyc.exists()
    assert path.read_bytes() == genuine

    # control: the planted bytecode is live, Python's default loader does run it
    spec = importlib.util.spec_from_file_location("tampered_control", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert marker_pyc.exists()
