"""Contact sheet of one image under every corruption and severity (`python -m pipeline corruptions`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES, CorruptionOptions, corrupt


def contact_sheet(
    image: np.ndarray, sample_id: int, cell: int = 96, options: CorruptionOptions = CorruptionOptions()
) -> Image.Image:
    """Rows: the 19 corruptions; columns: the clean image, then severities 1 to 5.

    `image` is uint8 (H, W, C); cells are upscaled with nearest neighbours so pixels stay visible.
    """
    label_w, head_h = 150, 24
    sheet = Image.new("RGB", (label_w + cell * 6, head_h + cell * len(CORRUPTION_NAMES)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(["clean", *(f"severity {s}" for s in SEVERITIES)]):
        draw.text((label_w + col * cell + 6, 6), title, fill="black")
    batch = image[None]
    ids = np.array([sample_id])
    for row, name in enumerate(CORRUPTION_NAMES):
        y = head_h + row * cell
        draw.text((6, y + cell // 2 - 6), name, fill="black")
        tiles = [image] + [corrupt(batch, name, s, ids, options)[0] for s in SEVERITIES]
        for col, tile in enumerate(tiles):
            pil = Image.fromarray(tile[..., 0] if tile.shape[2] == 1 else tile).convert("RGB")
            sheet.paste(pil.resize((cell - 4, cell - 4), Image.NEAREST), (label_w + col * cell + 2, y + 2))
    return sheet


def write_preview(
    out: Path, image: np.ndarray, sample_id: int, options: CorruptionOptions = CorruptionOptions()
) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(image, sample_id, options=options).save(out)
    return out
