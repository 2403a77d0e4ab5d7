"""Whether a checkpoint's states fit the live model and optimizer, checked before they are loaded.

:func:`load_model_state` and :func:`rebuild_model` compare a state dict's names, shapes and dtypes
with the model's (a config asking for a far larger model is refused before it is allocated);
:func:`check_optimizer_state` and :func:`check_same_structure` compare an optimizer's or
scheduler's stored state with a freshly made one. Its own file because these checks need the
objects the states go into, where :mod:`.checkpoint_validation` checks the file alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .checkpoint_validation import CheckpointError, first_line, is_int, is_number

__all__ = ["check_finite", "check_optimizer_state", "check_same_structure", "load_model_state", "rebuild_model"]


def _describe(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _fit_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> list[str]:
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing tensors {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_describe(unexpected)}")
    for name, ref in expected.items():
        got = state.get(name)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor):
            problems.append(f"{name} is a {type(got).__name__}, not a tensor")
        elif tuple(got.shape) != tuple(ref.shape):
            problems.append(f"{name} has shape {list(got.shape)} where the model has {list(ref.shape)}")
        elif got.dtype != ref.dtype:
            problems.append(f"{name} has dtype {got.dtype} where the model has {ref.dtype}")
    return problems


def _raise_misfit(problems: list[str], source: str) -> None:
    if problems:
        more = f"; and {len(problems) - 2} more problems" if len(problems) > 2 else ""
        raise CheckpointError(
            f"{source} does not fit the model: {'; '.join(problems[:2])}{more} (a checkpoint of another "
            "model or configuration?)"
        )


def load_model_state(model: nn.Module, state: Any, source: str = "the checkpoint") -> nn.Module:
    """``model.load_state_dict(state)`` after checking names, shapes and dtypes; returns ``model``.

    Raises:
        CheckpointError: a tensor is missing, unexpected, or of another shape or dtype (one line,
            naming the first ones).
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the model entry is a {type(state).__name__}, not a dict of tensors")
    _raise_misfit(_fit_problems(model.state_dict(), state), source)
    check_finite(state, f"{source}: model")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source} does not fit the model ({first_line(err)})") from None
    return model


def rebuild_model(build: Callable[[], nn.Module], state: Any, source: str = "the checkpoint") -> nn.Module:
    """Build a model from a checkpoint's config with ``build()`` and load its ``state`` into it.

    The model is first built on PyTorch's ``meta`` device (no memory) and compared with ``state``,
    so that a config asking for a model far larger than the file is refused before it is
    allocated. Any failure of ``build`` means the stored config does not describe a model.

    Raises:
        CheckpointError: the config builds no model, or the tensors do not fit it (one line).
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the model entry is a {type(state).__name__}, not a dict of tensors")
    try:
        with torch.device("meta"):
            probe = build()
    except Exception:  # noqa: BLE001 - retried below on the CPU, where the real error is reported
        probe = None
    if probe is not None:
        _raise_misfit(_fit_problems(probe.state_dict(), state), source)
    try:
        model = build()
    except Exception as err:  # noqa: BLE001 - a stored config may fail in any way
        raise CheckpointError(f"{source}: its model config does not build a model ({first_line(err)})") from None
    return load_model_state(model, state, source)


def check_same_structure(value: Any, template: Any, where: str) -> None:
    """Raise unless ``value`` has the structure of ``template`` (a freshly made state dict).

    Dicts need the same keys, lists and tuples the same length, tensors the same shape and
    dtype; numbers match numbers, and strings, booleans and ``None`` their own kind.

    Raises:
        CheckpointError: the first difference, named by its path.
    """
    if isinstance(template, dict):
        if not isinstance(value, dict):
            raise CheckpointError(f"{where} must be a dict, got {type(value).__name__}")
        if set(value) != set(template):
            missing, unexpected = (
                sorted(map(str, set(template) - set(value))),
                sorted(map(str, set(value) - set(template))),
            )
            raise CheckpointError(
                f"{where} has other entries than expected (missing {missing}, unexpected {unexpected})"
            )
        for key, sub in template.items():
            check_same_structure(value[key], sub, f"{where}.{key}")
    elif isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(template):
            raise CheckpointError(f"{where} must be a list of {len(template)} items")
        for i, (v, t) in enumerate(zip(value, template, strict=True)):
            check_same_structure(v, t, f"{where}[{i}]")
    elif isinstance(template, torch.Tensor):
        if not isinstance(value, torch.Tensor) or value.shape != template.shape or value.dtype != template.dtype:
            raise CheckpointError(
                f"{where} must be a {template.dtype} tensor of shape {list(template.shape)}, got "
                + (f"{value.dtype} {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__)
            )
    elif isinstance(template, bool) or template is None or isinstance(template, str):
        if type(value) is not type(template):
            raise CheckpointError(f"{where} must be {type(template).__name__}, got {type(value).__name__}")
    elif is_number(template) and not is_number(value):
        raise CheckpointError(f"{where} must be a number, got {type(value).__name__}")


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, source: str = "the checkpoint") -> None:
    """Raise unless ``state`` is a state dict that ``optimizer`` can load and step with.

    Checks the parameter groups against the optimizer's own, and every per-parameter tensor
    (Adam's moments) against its parameter's shape and dtype.

    Raises:
        CheckpointError: the first problem, in one line.
    """
    where = f"{source}: optimizer"
    template = optimizer.state_dict()
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise CheckpointError(f"{where} must be a dict with 'state' and 'param_groups'")
    groups = state["param_groups"]
    check_same_structure(groups, template["param_groups"], f"{where}.param_groups")
    for i, (group, ref) in enumerate(zip(groups, template["param_groups"], strict=True)):
        if list(group["params"]) != list(ref["params"]):
            raise CheckpointError(f"{where}.param_groups[{i}] lists other parameters than this model's")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    amsgrad = any(group.get("amsgrad") for group in optimizer.param_groups)
    required = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())
    per_param = state["state"]
    if not isinstance(per_param, dict):
        raise CheckpointError(f"{where}.state must be a dict")
    for index, entry in per_param.items():
        if not is_int(index) or not 0 <= index < len(params):
            raise CheckpointError(f"{where}.state has an entry {index!r} for no parameter of this model")
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where}.state[{index}] must be a dict")
        if isinstance(optimizer, torch.optim.Adam) and set(entry) != required:
            raise CheckpointError(f"{where}.state[{index}] must hold {sorted(required)}, got {sorted(map(str, entry))}")
        param = params[index]
        for key, value in entry.items():
            if key == "step":
                ok = is_number(value) or (
                    isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point()
                )
                if not ok or float(value) < 0:
                    raise CheckpointError(f"{where}.state[{index}].step must be a number >= 0")
            elif not isinstance(value, torch.Tensor) or value.shape != param.shape or value.dtype != param.dtype:
                raise CheckpointError(
                    f"{where}.state[{index}].{key} must be a {param.dtype} tensor of shape {list(param.shape)}"
                )


def check_finite(value: Any, where: str) -> None:
    """Raise unless every floating-point tensor in ``value`` (nested dicts and lists) is finite.

    A NaN or infinite weight, or optimizer moment, comes from a run that diverged before it was
    saved (training never saves one: it stops at the last good step) or from a damaged file.

    Raises:
        CheckpointError: (one line) the first entry holding NaN or inf.
    """
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{where} holds NaN or infinite values; the file is damaged, use an earlier checkpoint"
            )
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")
