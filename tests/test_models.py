"""Architectures, user models, the final-layer check and checkpoint errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.errors import PruneScopeError
from pipeline.models import ARCHS, build_model, final_linear, load_state

SHAPES = [(1, (8, 8), 10), (1, (28, 28), 10), (3, (32, 32), 7)]
CASES = [(arch, *shape) for arch in ARCHS.names() for shape in SHAPES]


@pytest.mark.parametrize("arch,channels,size,classes", CASES)
def test_every_arch_adapts_and_ends_in_linear(arch, channels, size, classes):
    model = build_model(arch, None, {}, channels, size, classes)
    x = torch.randn(2, channels, *size)
    name, head = final_linear(model, x)
    assert isinstance(head, nn.Linear) and head.out_features == classes
    assert model.eval()(x).shape == (2, classes)


def test_model_without_final_linear_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1))
    with pytest.raises(PruneScopeError, match="final nn.Linear.*Softmax"):
        final_linear(model, torch.randn(2, 4))


def test_user_import_model(user_nets):
    model = build_model(None, "usernets:make", {"width": 7}, 1, (8, 8), 10)
    assert final_linear(model, torch.randn(2, 1, 8, 8))[1].in_features == 7
    with pytest.raises(PruneScopeError, match="no callable 'nope'"):
        build_model(None, "usernets:nope", {}, 1, (8, 8), 10)
    with pytest.raises(PruneScopeError, match="cannot import module"):
        build_model(None, "no_such_module_xyz:make", {}, 1, (8, 8), 10)


def test_checkpoint_errors(tmp_path):
    model = build_model("digits_cnn", None, {}, 1, (8, 8), 10)
    good = tmp_path / "good.pt"
    torch.save(model.state_dict(), good)
    load_state(build_model("digits_cnn", None, {}, 1, (8, 8), 10), good)
    with pytest.raises(PruneScopeError, match="does not fit the architecture"):
        load_state(build_model("lenet5", None, {}, 1, (8, 8), 10), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PruneScopeError, match="cannot read checkpoint"):
        load_state(model, truncated)
    with pytest.raises(PruneScopeError, match="does not exist"):
        load_state(model, tmp_path / "missing.pt")
