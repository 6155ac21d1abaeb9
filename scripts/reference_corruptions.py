"""Outputs of the reference CIFAR-10-C generator on a few real 32×32 images: the test fixture
tests/fixtures/cifar_c_reference.npz that tests/test_corruptions.py holds PruneScope to.

The reference is `make_cifar_c.py` of Hendrycks & Dietterich (the script that made the official
CIFAR-10-C files; GitHub hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py). It is not
part of this repository: pass its path. It runs in its own virtualenv, never PruneScope's, with
the libraries it imports (skimage 0.19 is the last release that takes its `multichannel=`, and it
has wheels up to Python 3.10):

    python3.10 -m venv /tmp/cifar-c-ref
    /tmp/cifar-c-ref/bin/pip install -r scripts/reference-requirements.txt
    /tmp/cifar-c-ref/bin/python scripts/reference_corruptions.py make_cifar_c.py tests/fixtures/cifar_c_reference.npz

What is taken from the reference file: its definitions, everything above the line
`# /////////////// End Distortions ///////////////` (below it the script loads CIFAR-10 from the
authors' paths and writes the dataset). Stubbed, because the compared corruptions never use
them: `torch` and `torchvision` (only the dataset loop), and `wand` (ImageMagick, only for
motion_blur and snow, which draw random numbers and are not compared). An image goes in as the
script's loop feeds it (a PIL RGB image: its ToTensor → ToPILImage round trip is the identity on
uint8) and comes out as the script saves it, `np.uint8(output)`.

The images: four of scikit-image's sample photographs (astronaut, chelsea, coffee, rocket),
centre-cropped to a square and shrunk to 32×32 with a box filter, and two 32×32 patches of the
astronaut shrunk to 128×128 (fine detail, flat and saturated areas).

Saved: `images` (N, 32, 32, 3) uint8; `<name>` (5, N, 32, 32, 3) uint8 for every corruption
that draws no random numbers, severities 1–5; for glass_blur, which draws the direction of every
pixel move, `glass_blur` (5, N, 32, 32, 3) and `glass_blur_draws_s<severity>` (N, moves, 2) with
the reference's own draws (dx, dy) in the order it made them, so that PruneScope can be driven
with the same moves; `versions`, the library versions that made the file.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

DETERMINISTIC = (
    "defocus_blur",
    "zoom_blur",
    "gaussian_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
    "saturate",
)
END_OF_DEFINITIONS = "# /////////////// End Distortions ///////////////"


def stub_modules() -> None:
    """Empty stand-ins for the imports that only the dataset loop and the ImageMagick corruptions use."""
    wand_api = types.ModuleType("wand.api")
    wand_api.library = types.SimpleNamespace(MagickMotionBlurImage=types.SimpleNamespace())
    wand_image = types.ModuleType("wand.image")
    wand_image.Image = type("WandImage", (), {})
    torchvision = types.ModuleType("torchvision")
    torchvision.datasets = types.ModuleType("torchvision.datasets")
    torchvision.transforms = types.ModuleType("torchvision.transforms")
    torch = types.ModuleType("torch")
    torch.utils = types.ModuleType("torch.utils")
    torch.utils.data = types.ModuleType("torch.utils.data")
    sys.modules.update(
        {
            "wand": types.ModuleType("wand"),
            "wand.api": wand_api,
            "wand.image": wand_image,
            "wand.color": types.ModuleType("wand.color"),
            "torch": torch,
            "torch.utils": torch.utils,
            "torch.utils.data": torch.utils.data,
            "torchvision": torchvision,
            "torchvision.datasets": torchvision.datasets,
            "torchvision.transforms": torchvision.transforms,
        }
    )


def load_reference(path: Path) -> dict:
    """The reference's definitions, executed without its dataset loop."""
    source = path.read_text()
    if END_OF_DEFINITIONS not in source:
        raise SystemExit(f"{path} does not look like make_cifar_c.py (no '{END_OF_DEFINITIONS}' line)")
    stub_modules()
    namespace: dict = {"__name__": "make_cifar_c"}
    exec(compile(source.split(END_OF_DEFINITIONS)[0], str(path), "exec"), namespace)
    return namespace


def sample_images() -> np.ndarray:
    """Six real 32×32 RGB images from scikit-image's sample data."""
    import skimage.data

    def square(img: np.ndarray) -> Image.Image:
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return Image.fromarray(img[top : top + side, left : left + side])

    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]
    tiles = [np.asarray(square(p).resize((32, 32), Image.BOX)) for p in photos]
    astronaut = np.asarray(square(photos[0]).resize((128, 128), Image.BOX))
    tiles += [astronaut[16:48, 40:72], astronaut[80:112, 0:32]]
    return np.stack(tiles).astype(np.uint8)


def run_glass_blur(ref: dict, img: Image.Image, severity: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's glass_blur on one image, with the draws of its pixel moves recorded."""
    draws = []
    randint = np.random.randint

    def recording_randint(*args, **kwargs):
        out = randint(*args, **kwargs)
        draws.append(out)
        return out

    np.random.seed(seed)
    np.random.randint = recording_randint
    try:
        out = np.uint8(ref["glass_blur"](img, severity))
    finally:
        np.random.randint = randint
    return out, np.stack(draws).astype(np.int8)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: reference_corruptions.py PATH/TO/make_cifar_c.py OUT.npz")
    ref = load_reference(Path(sys.argv[1]))
    images = sample_images()
    pil = [Image.fromarray(img) for img in images]
    out: dict[str, np.ndarray] = {"images": images}
    for name in DETERMINISTIC:
        out[name] = np.stack(
            [np.stack([np.uint8(ref[name](img, severity)) for img in pil]) for severity in range(1, 6)]
        )
    glass = []
    for severity in range(1, 6):
        runs = [run_glass_blur(ref, img, severity, seed=100 * severity + i) for i, img in enumerate(pil)]
        glass.append(np.stack([r[0] for r in runs]))
        out[f"glass_blur_draws_s{severity}"] = np.stack([r[1] for r in runs])
    out["glass_blur"] = np.stack(glass)

    import cv2
    import PIL
    import scipy
    import skimage

    out["versions"] = np.array(
        [
            f"python {sys.version.split()[0]}",
            f"numpy {np.__version__}",
            f"scipy {scipy.__version__}",
            f"scikit-image {skimage.__version__}",
            f"opencv {cv2.__version__}",
            f"pillow {PIL.__version__}",
        ]
    )
    Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(sys.argv[2], **out)
    print(f"wrote {sys.argv[2]}: {len(images)} images, {len(DETERMINISTIC)} + glass_blur corruptions × 5 severities")


if __name__ == "__main__":
    main()
