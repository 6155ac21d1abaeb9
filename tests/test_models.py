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


@pytest.mark.parametrize("arch", ["alexnet_cifar", "vgg16_cifar", "resnet18_cifar"])
def test_width_scales_the_cifar_archs(arch):
    full = build_model(arch, None, {}, 3, (32, 32), 10)
    same = build_model(arch, None, {"width": 1}, 3, (32, 32), 10)
    assert {k: v.shape for k, v in full.state_dict().items()} == {k: v.shape for k, v in same.state_dict().items()}
    small = build_model(arch, None, {"width": 0.125}, 3, (32, 32), 10)
    n_full, n_small = (sum(p.numel() for p in m.parameters()) for m in (full, small))
    assert n_small < n_full / 30
    x = torch.randn(2, 3, 32, 32)
    assert final_linear(small, x)[1].out_features == 10 and small.eval()(x).shape == (2, 10)


@pytest.mark.parametrize("width", [0, -1, "wide", True, 17])
def test_bad_width_is_refused_at_parse(width):
    from pipeline.models import check_arch_kwargs

    with pytest.raises(PruneScopeError, match="width = .* must be a number in"):
        check_arch_kwargs("vgg16_cifar", {"width": width})


@pytest.mark.parametrize("size", [(8, 8), (28, 28), (1, 1)])
def test_digits_cnn_pool_first_has_the_same_layers_on_fewer_positions(size):
    late = build_model("digits_cnn", None, {}, 1, size, 10)
    early = build_model("digits_cnn", None, {"pool_first": True}, 1, size, 10)
    shapes = [p.shape for p in late.parameters()]
    assert [p.shape for p in early.parameters()] == shapes
    positions = []
    for model in (late, early):
        conv2 = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1]
        hook = conv2.register_forward_hook(lambda m, i, o: positions.append(o.shape[2] * o.shape[3]))
        assert model.eval()(torch.randn(2, 1, *size)).shape == (2, 10)
        hook.remove()
    assert positions[1] == max(1, size[0] // 2) * max(1, size[1] // 2) < positions[0] or size == (1, 1)


def test_extract_features_do_not_depend_on_the_batch_size_or_the_memory_format():
    from pipeline.training import Normalizer, extract

    torch.manual_seed(0)
    model = build_model("digits_cnn", None, {"pool_first": True}, 1, (8, 8), 10).eval()
    images = torch.randint(0, 256, (300, 8, 8, 1), dtype=torch.uint8).numpy()
    norm, cpu = Normalizer((0.5,), (0.25,)), torch.device("cpu")
    head = model[-1]
    with torch.no_grad():
        plain = model[:-1](norm(images, cpu))  # NCHW, one batch: the features by definition
    whole = extract(model, head, images, norm, cpu, 300)
    assert torch.allclose(whole, plain, atol=1e-5)
    assert torch.equal(extract(model, head, images, norm, cpu, 64), whole)
    conv = model[3].weight  # handed back in the default layout: what runs the model next does not depend on it
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)


def test_a_model_features_were_extracted_from_still_trains_and_gets_gradients():
    """extract runs in inference mode; the weights it converts and the normaliser's cached statistics must not
    become inference tensors, or the attribution unit that follows in the same process fails (CI, Dask)."""
    from pipeline.training import Normalizer, extract

    torch.manual_seed(0)
    model = build_model("digits_cnn", None, {"pool_first": True}, 1, (8, 8), 10).eval()
    images = torch.randint(0, 256, (4, 8, 8, 1), dtype=torch.uint8).numpy()
    norm, cpu = Normalizer((0.4,), (0.3,)), torch.device("cpu")  # statistics first made inside extract
    extract(model, model[-1], images, norm, cpu, 2)
    assert not any(p.is_inference() for p in model.parameters())
    x = norm(images, cpu).requires_grad_()
    model(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())
