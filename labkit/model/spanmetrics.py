"""Per-turn and per-rollout metrics of a spans table: the formulas every layer reads (the sweep engine, live
measurements, trace fits, the analysis tables), so they sit with the table's schema.

Formulas (stated once, used everywhere):
- turn start: the start of the turn's first non-tool span (attempts included, so a fallback's cost counts);
- TTFT: start of the last attempt's ``decode`` span minus the turn start (the first output delta reaches
  the client when decoding becomes visible);
- turn latency: end of the turn's last non-tool span minus the turn start;
- rollout end to end: last span end minus first span start of the rollout;
- API-overhead share: time in API-service and network stages divided by end to end (inference and client
  tools are the rest). Live coarse spans put ``request`` in ``other``: it mixes API work and prefill.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.model.stages import stage_category

TURN_KEYS = ["source", "scenario", "rollout", "turn"]
ROLLOUT_KEYS = ["source", "scenario", "rollout"]
CATEGORIES = ("network", "api", "inference", "client", "other")


def with_category(spans: pd.DataFrame) -> pd.DataFrame:
    """The spans with each row's ``duration_s`` and stage ``category``."""
    cats = {s: stage_category(s) for s in spans["stage"].unique()}
    out = spans.assign(duration_s=spans["end_s"] - spans["start_s"])
    out["category"] = out["stage"].map(cats)
    return out


def turn_metrics(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per turn: ``start_s, ttft_s, latency_s``, time per category, ``attempts``, ``tokens_out``."""
    if spans.empty:
        return pd.DataFrame(columns=[*TURN_KEYS, "start_s", "ttft_s", "latency_s", "attempts"])
    df = with_category(spans)
    req = df[df["category"] != "client"]
    g = req.groupby(TURN_KEYS, sort=True)
    out = pd.DataFrame({"start_s": g["start_s"].min(), "end_s": g["end_s"].max(), "attempts": g["attempt"].max() + 1})
    dec = req[req["stage"] == "decode"]
    if not dec.empty:
        last = dec.sort_values("attempt").groupby(TURN_KEYS)
        out["decode_start_s"] = last["start_s"].last()
        out["tokens_out"] = last["tokens"].last() + 1
    else:
        out["decode_start_s"] = np.nan
        out["tokens_out"] = 0
    out["ttft_s"] = out["decode_start_s"] - out["start_s"]
    out["latency_s"] = out["end_s"] - out["start_s"]
    per_cat = df.pivot_table(index=TURN_KEYS, columns="category", values="duration_s", aggfunc="sum", fill_value=0.0)
    for cat in CATEGORIES:
        out[f"{cat}_s"] = per_cat.get(cat, 0.0)
    out[[f"{c}_s" for c in CATEGORIES]] = out[[f"{c}_s" for c in CATEGORIES]].fillna(0.0)
    out = out.drop(columns=["decode_start_s"])
    return out.reset_index()


def rollout_metrics(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per rollout: ``e2e_s``, mean TTFT, time per category, ``overhead_share``, ``fallbacks``."""
    if spans.empty:
        return pd.DataFrame(columns=[*ROLLOUT_KEYS, "e2e_s", "ttft_mean_s", "overhead_share"])
    df = with_category(spans)
    g = df.groupby(ROLLOUT_KEYS, sort=True)
    out = pd.DataFrame({"e2e_s": g["end_s"].max() - g["start_s"].min()})
    per_cat = df.pivot_table(index=ROLLOUT_KEYS, columns="category", values="duration_s", aggfunc="sum", fill_value=0.0)
    for cat in CATEGORIES:
        out[f"{cat}_s"] = per_cat.get(cat, 0.0)
    turns = turn_metrics(spans).groupby(ROLLOUT_KEYS)
    out["turns"] = turns["turn"].count()
    out["ttft_mean_s"] = turns["ttft_s"].mean()
    out["turn_latency_mean_s"] = turns["latency_s"].mean()
    out["fallbacks"] = turns["attempts"].sum() - out["turns"]
    out["overhead_share"] = (out["api_s"] + out["network_s"]) / out["e2e_s"]
    return out.reset_index()
