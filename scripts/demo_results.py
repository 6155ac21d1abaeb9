"""The README's demo numbers, from a run: accuracy vs sparsity (a PNG plot and a Markdown
table) and the paper's claims checked on it (`python -m pipeline paper`) as a Markdown table.

Usage: python scripts/demo_results.py cache/store/demo docs/demo_accuracy_vs_sparsity.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.figures.sweetspot import accuracy_vs_sparsity, variant_labels  # noqa: E402
from pipeline.paper import check_claims  # noqa: E402
from scripts.render_png import figure_png  # noqa: E402


def markdown_table(models: pd.DataFrame) -> str:
    """Rows: method variants; columns: target sparsity; cells: clean accuracy (measured sparsity)."""
    df = models[models["method"] != "dense"].assign(variant=variant_labels(models))
    df["cell"] = [f"{a:.3f} ({s:.2f})" for a, s in zip(df["clean_accuracy"], df["sparsity"])]
    table = df.pivot_table(index="variant", columns="target_sparsity", values="cell", aggfunc="first").fillna("")
    dense = models.loc[models["method"] == "dense", "clean_accuracy"]
    head = "| variant | " + " | ".join(f"{c:g}" for c in table.columns) + " |"
    lines = [head, "|---" * (len(table.columns) + 1) + "|"]
    lines += [f"| {v} | " + " | ".join(row) + " |" for v, row in zip(table.index, table.values.tolist())]
    if len(dense):
        lines.append(
            f"\nDense model: {dense.iloc[0]:.3f}. Cells: clean accuracy (measured sparsity of all prunable weights)."
        )
    return "\n".join(lines)


def claims_table(run_dir: Path) -> str:
    """The paper's claims on the run: source, claim, the paper's value, the run's, the verdict; then the notes."""
    _, claims, notes = check_claims(run_dir)
    lines = ["| | claim | paper | demo | reproduces |", "|---|---|---|---|---|"]
    lines += [f"| {c.source} | {c.claim} | {c.paper} | {c.run} | **{c.verdict}** |" for c in claims]
    return "\n".join(lines + [""] + [f"Note: {n}." for n in notes])


def main() -> None:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    models = pq.read_table(run_dir / "models.parquet").to_pandas()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure_png(accuracy_vs_sparsity(models, title=f"{run_dir.name}: clean accuracy vs sparsity"), out)
    print(markdown_table(models))
    print()
    print(claims_table(run_dir))


if __name__ == "__main__":
    main()
