"""Architectures (one registered factory each), user models, and the final-layer check.

Every factory takes `(in_channels, image_size, num_classes)` and returns an `nn.Module`
whose output is the output of a final `nn.Linear`: the layer whose weight rows are the
class directions (shared/DESIGN.md §1).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pipeline.errors import PruneScopeError
from pipeline.registry import Registry

ArchFactory = Callable[[int, tuple[int, int], int], nn.Module]
ARCHS: Registry[ArchFactory] = Registry("architecture")
register_arch = ARCHS.register


@register_arch("digits_cnn")
def digits_cnn(in_channels: int, image_size: tuple[int, int], num_classes: int, pool_first: bool = False) -> nn.Module:
    """Two 3×3 conv layers (16, 32 filters), one pooling step, a 128-wide feature layer: the
    demo model, small enough to evaluate on all 95 corrupted sets in seconds.

    `pool_first` pools after the first convolution instead of the second, so the second runs on
    a quarter of the positions: about 4× fewer multiply-adds for the same layers (the demo's choice)."""
    h, w = (max(1, s // 2) for s in image_size)
    pool = nn.MaxPool2d(2) if min(image_size) >= 2 else nn.Identity()
    convs = [nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(inplace=True)]
    convs += [nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True)]
    convs.insert(2 if pool_first else 4, pool)
    return nn.Sequential(
        *convs,
        nn.Flatten(),
        nn.Linear(32 * h * w, 128),
        nn.ReLU(inplace=True),
        nn.Linear(128, num_classes),
    )


@register_arch("lenet5")
def lenet5(in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    """LeNet-5 (6 and 16 filters of 5×5, 120-84 fully connected); adaptive pooling fits any size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(5),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(inplace=True),
        nn.Linear(120, 84),
        nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )


def check_width(width: Any) -> float:
    """`kwargs = { width = w }` of the CIFAR architectures: a positive factor on every layer's width."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 16:
        raise PruneScopeError(
            f"architecture kwarg width = {width!r} must be a number in (0, 16]",
            "1 is the published network; e.g. kwargs = { width = 0.25 } for a quarter of its channels",
        )
    return float(width)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


@register_arch("alexnet_cifar")
def alexnet_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int, width: float = 1.0) -> nn.Module:
    """AlexNet adapted to small images (3×3 kernels, adaptive pooling to 2×2); `width` scales every layer."""
    c1, c2, c3, c4, f1, f2 = (_scaled(c, check_width(width)) for c in (64, 192, 384, 256, 1024, 512))
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c4, c4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(c4 * 4, f1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(f1, f2),
        nn.ReLU(inplace=True),
        nn.Linear(f2, num_classes),
    )


VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


@register_arch("vgg16_cifar")
def vgg16_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int, width: float = 1.0) -> nn.Module:
    """VGG-16 with BatchNorm for 32×32 inputs; pooling steps are skipped once the map is 1×1;
    `width` scales every layer."""
    layers: list[nn.Module] = []
    size, channels, width = min(image_size), in_channels, check_width(width)
    for v in VGG16_CFG:
        if v == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        else:
            out = _scaled(int(v), width)
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs with a projection shortcut when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """ResNet-18 for CIFAR (3×3 stem, no max-pool), global average pooling, linear head."""

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        stem = _scaled(64, width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
        )
        blocks, cin = [], stem
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            cout = _scaled(cout, width)
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


@register_arch("resnet18_cifar")
def resnet18_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int, width: float = 1.0) -> nn.Module:
    """ResNet-18 for CIFAR; `width` scales every layer."""
    return ResNet18Cifar(in_channels, num_classes, check_width(width))


def check_arch_kwargs(arch: str, kwargs: dict[str, Any]) -> None:
    """Refuse `kwargs` a registered architecture does not take, before anything is built."""
    params = list(inspect.signature(ARCHS.get(arch)).parameters.values())[3:]
    try:
        inspect.signature(ARCHS.get(arch)).bind(1, (8, 8), 10, **kwargs)
    except TypeError:
        names = ", ".join(p.name for p in params if p.kind is not p.VAR_KEYWORD)
        raise PruneScopeError(
            f"architecture {arch!r} does not take kwargs {sorted(kwargs)}",
            f"its kwargs: {names}" if names else f"{arch!r} takes no kwargs: remove them (or use import = ...)",
        ) from None
    if "width" in kwargs:
        check_width(kwargs["width"])


def import_factory(spec: str, search_dir: str | None = None) -> Callable[..., nn.Module]:
    """Resolve `"package.module:factory"` to a callable; errors name the part that failed.

    `search_dir` (the config's folder) is searched first, as a `checkpoint` path is resolved there.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PruneScopeError(
            f"import {spec!r} is not of the form 'package.module:factory'",
            'write e.g. import = "mymodels.nets:make_net"',
        )
    if search_dir is not None and str(search_dir) not in sys.path:
        sys.path.insert(0, str(search_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PruneScopeError(
            f"cannot import module {module_name!r}: {exc}",
            "put it next to the config, or make it importable (PYTHONPATH or pip install -e)",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any error while running the user's module is theirs to fix
        raise PruneScopeError(
            f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}", "fix the error in that module"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PruneScopeError(
            f"module {module_name!r} has no callable {attr!r}", "name a function or class that builds the model"
        )
    return factory


def build_model(
    arch: str | None,
    import_spec: str | None,
    kwargs: dict[str, Any],
    in_channels: int,
    image_size: tuple[int, int],
    num_classes: int,
    factory: Callable[..., nn.Module] | None = None,
    import_dir: str | None = None,
) -> nn.Module:
    """Build a registered architecture, or call a user factory (`import_spec` or a callable) with `kwargs`.

    `import_dir` is searched first for the module of `import_spec`. An exception raised by a
    user factory becomes a PruneScopeError naming it.
    """
    if import_spec is not None or factory is not None:
        make = factory or import_factory(str(import_spec), import_dir)
        try:
            model = make(**kwargs)
        except PruneScopeError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's factory may fail in any way
            name = import_spec or getattr(make, "__name__", "the model factory")
            raise PruneScopeError(
                f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) raised {type(exc).__name__}: {exc}",
                "fix the factory or its `kwargs`",
            ) from None
        if not isinstance(model, nn.Module):
            raise PruneScopeError(
                f"{import_spec or factory} returned {type(model).__name__}, not an nn.Module", "return the model object"
            )
        return model
    assert arch is not None
    return ARCHS.get(arch)(in_channels, image_size, num_classes, **kwargs)


def final_linear(model: nn.Module, example: torch.Tensor) -> tuple[str, nn.Linear]:
    """Name and module of the `nn.Linear` whose output is the model's output.

    Runs `example` (a batch) through the model with hooks on every leaf module; the model is
    accepted only if its output tensor is exactly the output of a Linear layer.
    """
    calls: list[tuple[str, nn.Module, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: calls.append((name, mod, out)))
        for name, m in model.named_modules()
        if not list(m.children())
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(example)
    except Exception as exc:  # noqa: BLE001 - a model that cannot take the data set's images
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PruneScopeError(
            f"the model fails on a batch of the data set's images (shape {tuple(example.shape)}): {first}",
            "build it for these inputs (channels, image size, classes), or resize the images "
            "([dataset] options = { image_size = N } for imagefolder)",
        ) from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    for name, module, out in reversed(calls):
        if out is output:
            if isinstance(module, nn.Linear):
                return name, module
            break
    last = f"{type(calls[-1][1]).__name__} ({calls[-1][0]})" if calls else "no layer"
    raise PruneScopeError(
        f"the model's output does not come from a final nn.Linear (last layer called: {last})",
        "PruneScope measures geometry at the input of a final nn.Linear: end the model with one "
        "(move a final softmax or activation into the loss)",
    )


STATE_KEYS = ("state_dict", "model_state_dict", "model")  # where training scripts nest the weights
ACCURACY_KEYS = ("accuracy", "test_accuracy", "acc", "test_acc", "best_acc")  # metadata beside them


def fold_pruning_masks(state: dict[str, Any]) -> dict[str, Any]:
    """A state_dict of a model pruned with `torch.nn.utils.prune` and not `prune.remove`d
    (`<name>_orig` and `<name>_mask` entries) as `prune.remove` would leave it: `<name>` =
    orig × mask, so the masked weights are exact zeros."""
    folded = dict(state)
    for key in [k for k in state if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        mask = state.get(f"{base}_mask")
        if mask is None or base in state:
            continue
        folded[base] = state[key] * mask.to(state[key].dtype)
        del folded[key], folded[f"{base}_mask"]
    return folded


def _reported_accuracy(meta: dict[str, Any]) -> float | None:
    """The accuracy a checkpoint's metadata reports, as a fraction (percentages are divided by 100)."""
    for key in ACCURACY_KEYS:
        value = meta.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100:
            return float(value) / 100 if value > 1 else float(value)
    return None


def load_state(model: nn.Module, path: Path) -> dict[str, Any]:
    """Load a state_dict checkpoint (weights_only=True) into `model`, with clear errors.

    Accepts a plain state_dict, one nested under `state_dict` / `model_state_dict` / `model`
    beside metadata, and the state of a model pruned with `torch.nn.utils.prune` (masks
    folded in). Returns what the checkpoint says about itself: `reported_accuracy` when its
    metadata holds one.
    """
    if not path.is_file():
        raise PruneScopeError(f"checkpoint {path} does not exist", "check the `checkpoint` path in the config")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise PruneScopeError(
                f"cannot read checkpoint {path}: it is not a PyTorch file ({str(exc).splitlines()[0]})",
                "save the weights with torch.save(model.state_dict(), path)",
            ) from None
        raise PruneScopeError(
            f"checkpoint {path} holds pickled Python objects (a whole model saved with torch.save(model), "
            "or other code), which PruneScope does not load: unpickling can run any code",
            "where you trust the file, save its weights instead: "
            f"torch.save(torch.load('{path.name}', weights_only=False).state_dict(), 'state_dict.pt')",
        ) from None
    except Exception as exc:  # noqa: BLE001 - a file torch cannot parse fails in many ways (KeyError on text)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PruneScopeError(
            f"cannot read checkpoint {path}: {first}",
            "the file is truncated or not a PyTorch state_dict: "
            "save it again with torch.save(model.state_dict(), path)",
        ) from None
    meta: dict[str, Any] = {}
    if isinstance(state, dict):
        nested = next((k for k in STATE_KEYS if isinstance(state.get(k), dict)), None)
        if nested is not None:
            meta, state = {k: v for k, v in state.items() if k != nested}, state[nested]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PruneScopeError(
            f"checkpoint {path} holds a {type(state).__name__} that is not a state_dict of tensors",
            "save it with torch.save(model.state_dict(), path)",
        )
    try:
        model.load_state_dict(fold_pruning_masks(state))
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][:4]
        raise PruneScopeError(
            f"checkpoint {path} does not fit the architecture: {' '.join(lines)}",
            "use the architecture (and data set: channels, classes) the checkpoint was trained with",
        ) from None
    accuracy = _reported_accuracy(meta)
    return {} if accuracy is None else {"reported_accuracy": accuracy}


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All Conv2d and Linear layers with their names, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
