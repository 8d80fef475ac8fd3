"""The micro tier in the report: crypto floor, library overhead, store operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from analysis.data.formats import MICRO, load_json
from analysis.report.plots import finish

# The reference figures authbench is held to (2-core x86-64, PyJWT 2.15, cryptography 50), µs.
REFERENCE_VERIFY_US = {"HS256": 24, "HS512": 28, "RS256-2048": 45, "RS256-3072": 67,
                       "PS256": 50, "ES256": 71, "ES384": 367, "EdDSA": 84}
REFERENCE_SIGN_US = {"HS256": 11, "HS512": 13, "RS256-2048": 217, "RS256-3072": 640,
                     "PS256": 239, "ES256": 26, "ES384": 153, "EdDSA": 25}


def load_micro(path: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """micro.json as its header and a DataFrame of results (one row per benchmark);
    refuses a format it does not know."""
    data = load_json(path, MICRO)
    frame = pd.DataFrame(data["results"])
    return data, frame


def jwt_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm: raw verify (floor), PyJWT and joserfc verify and sign, token bytes."""
    jwt = frame[frame["group"] == "jwt"].copy()
    if jwt.empty:
        return pd.DataFrame()
    parts = jwt["name"].str.rsplit(" ", n=2, expand=True)
    jwt["alg"], jwt["lib"], jwt["op"] = parts[0], parts[1], parts[2]
    table = jwt.pivot_table(index="alg", columns=["lib", "op"], values="median_us")
    table.columns = [f"{lib} {op}" for lib, op in table.columns]
    table["token_bytes"] = jwt.groupby("alg")["extra"].first().map(lambda e: e["token_bytes"])
    table["reference pyjwt verify"] = table.index.map(REFERENCE_VERIFY_US.get)
    table["reference pyjwt sign"] = table.index.map(REFERENCE_SIGN_US.get)
    return table


def plot_crypto_floor(frame: pd.DataFrame, caption: str) -> Figure:
    """Verify cost per algorithm: the raw primitive, then each library on top of it."""
    table = jwt_table(frame)
    columns = [c for c in ("raw verify", "joserfc verify", "pyjwt verify") if c in table]
    figure, axes = plt.subplots(figsize=(9, 0.5 * len(table) + 1.8))
    height = 0.8 / max(1, len(columns))
    for offset, column in enumerate(columns):
        axes.barh([y + offset * height for y in range(len(table))], table[column],
                  height=height, label=column)
    axes.set_yticks([y + 0.4 - height / 2 for y in range(len(table))], table.index, fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("µs per verify, in-process (log scale)")
    axes.legend(fontsize=8)
    return finish(figure, "Where the time goes: crypto floor and library overhead", caption)


def micro_lines(frame: pd.DataFrame) -> list[str]:
    """The micro section of report.md."""
    lines = ["## The micro tier (in-process)", ""]
    table = jwt_table(frame)
    if not table.empty:
        columns = [c for c in ("raw verify", "joserfc verify", "pyjwt verify", "pyjwt sign",
                               "reference pyjwt verify", "reference pyjwt sign", "token_bytes")
                   if c in table]
        lines += ["Median µs per operation; `reference` is the reference figure for PyJWT "
                  "2.15 on a 2-core x86-64.", "",
                  "| algorithm | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for alg, row in table.iterrows():
            cells = [f"{row[c]:.1f}" if pd.notna(row[c]) else "-" for c in columns]
            lines.append(f"| {alg} | " + " | ".join(cells) + " |")
        lines.append("")
    others = frame[frame["group"] != "jwt"]
    if not others.empty:
        lines += ["| benchmark | median µs | ± stdev |", "|---|---|---|"]
        for _, row in others.iterrows():
            lines.append(f"| {row['name']} | {row['median_us']:.2f} | {row['stdev_us']:.2f} |")
        lines.append("")
    return lines
