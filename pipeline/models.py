"""Architectures (one registered factory each), user models, and the final-layer check.

Every factory takes `(in_channels, image_size, num_classes)` and returns an `nn.Module`
whose output is the output of a final `nn.Linear`: the layer whose weight rows are the
class directions (shared/DESIGN.md §1).
"""

from __future__ import annotations

import importlib
import zipfile
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
def digits_cnn(in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    """Two 3×3 conv layers (16, 32 filters), one pooling step, a 128-wide feature layer: the
    demo model, small enough to evaluate on all 95 corrupted sets in seconds."""
    h, w = (max(1, s // 2) for s in image_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2) if min(image_size) >= 2 else nn.Identity(),
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


@register_arch("alexnet_cifar")
def alexnet_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    """AlexNet adapted to small images (3×3 kernels, adaptive pooling to 2×2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(64, 192, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(256 * 4, 1024),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(1024, 512),
        nn.ReLU(inplace=True),
        nn.Linear(512, num_classes),
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
def vgg16_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    """VGG-16 with BatchNorm for 32×32 inputs; pooling steps are skipped once the map is 1×1."""
    layers: list[nn.Module] = []
    size, channels = min(image_size), in_channels
    for v in VGG16_CFG:
        if v == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        else:
            layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            channels = int(v)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
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

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


@register_arch("resnet18_cifar")
def resnet18_cifar(in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    return ResNet18Cifar(in_channels, num_classes)


def import_factory(spec: str) -> Callable[..., nn.Module]:
    """Resolve `"package.module:factory"` to a callable; errors name the part that failed."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PruneScopeError(
            f"import {spec!r} is not of the form 'package.module:factory'",
            'write e.g. import = "mymodels.nets:make_net"',
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PruneScopeError(
            f"cannot import module {module_name!r}: {exc}", "make it importable (PYTHONPATH or pip install -e)"
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
) -> nn.Module:
    """Build a registered architecture, or call a user factory (`import_spec` or a callable) with `kwargs`."""
    if import_spec is not None or factory is not None:
        model = (factory or import_factory(str(import_spec)))(**kwargs)
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


def load_state(model: nn.Module, path: Path) -> None:
    """Load a state_dict checkpoint (weights_only=True) into `model`, with clear errors."""
    if not path.is_file():
        raise PruneScopeError(f"checkpoint {path} does not exist", "check the `checkpoint` path in the config")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PruneScopeError(
            f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}",
            "the file is truncated or not a PyTorch state_dict: "
            "save it again with torch.save(model.state_dict(), path)",
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PruneScopeError(
            f"checkpoint {path} holds a {type(state).__name__}, not a state_dict",
            "save it with torch.save(model.state_dict(), path)",
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][:4]
        raise PruneScopeError(
            f"checkpoint {path} does not fit the architecture: {' '.join(lines)}",
            "use the architecture (and data set: channels, classes) the checkpoint was trained with",
        ) from None


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All Conv2d and Linear layers with their names, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
