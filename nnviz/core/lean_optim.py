"""Optimizer steps without importing torch's compiler, which nnviz never uses.

``torch.optim`` prepares its optimizers for ``torch.compile``: ``Optimizer.step`` is
wrapped to run ``import torch._dynamo`` and mark graph breaks on every call, and
``add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` are wrapped in
``torch._disable_dynamo``, which imports ``torch._dynamo`` on first use. That import
brings sympy and mpmath along: about 800 modules, 60-80 MB of memory and 1-2 s of CPU,
for marks that do nothing when nothing is compiled (and nnviz compiles nothing;
``torch.export`` traces a model's forward, never an optimizer).

``step`` calls the optimizer's own update (``Adam.step`` as written, found under its
wrappers) with gradients off, which is what the wrappers do around it when not
compiling; it falls back to ``optimizer.step()`` if any optimizer hook is registered (the
wrapper is what calls them). ``keep_from_importing_dynamo`` gives the
``_disable_dynamo`` wrappers the plain function they would otherwise build from
``torch._dynamo`` on first call. If torch changes how either works, the fallbacks take
torch's own path: bigger and slower, never different.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import optimizer as _optimizer_module

_MARK = "__dynamo_disable"  # where torch._disable_dynamo keeps the function it made


def _disabled_wrapper_code() -> object | None:
    """The code object of the wrapper ``torch._disable_dynamo`` puts around a function."""
    disable = getattr(torch, "_disable_dynamo", None)
    if disable is None:
        return None
    return getattr(disable(lambda: None), "__code__", None)


def keep_from_importing_dynamo() -> int:
    """Mark every torch.optim method wrapped by ``torch._disable_dynamo`` as plain;
    returns how many were marked (0 if torch no longer works this way)."""
    wrapper_code = _disabled_wrapper_code()
    if wrapper_code is None:
        return 0
    classes = {Optimizer}
    classes.update(
        obj
        for obj in vars(torch.optim).values()
        if inspect.isclass(obj) and issubclass(obj, Optimizer)
    )
    marked = 0
    for cls in classes:
        for attr in vars(cls).values():
            wrapped = getattr(attr, "__wrapped__", None)
            if getattr(attr, "__code__", None) is wrapper_code and wrapped is not None:
                if not hasattr(wrapped, _MARK):
                    setattr(wrapped, _MARK, wrapped)
                marked += 1
    return marked


def _has_hooks(optimizer: Optimizer) -> bool:
    hook_tables = (
        getattr(optimizer, "_optimizer_step_pre_hooks", None),
        getattr(optimizer, "_optimizer_step_post_hooks", None),
        getattr(_optimizer_module, "_global_optimizer_pre_hooks", None),
        getattr(_optimizer_module, "_global_optimizer_post_hooks", None),
    )
    # A table missing means torch changed: take its own path.
    return any(table is None or len(table) for table in hook_tables)


def step(optimizer: Optimizer) -> Any:  # noqa: ANN401 - whatever the optimizer's step returns
    """``optimizer.step()`` without the compiler's wrappers (see the module docstring)."""
    update = inspect.unwrap(type(optimizer).step)
    if (
        update is type(optimizer).step
        or optimizer.defaults.get("differentiable")
        or (_has_hooks(optimizer))
    ):
        return optimizer.step()
    with torch.no_grad():
        return update(optimizer)
