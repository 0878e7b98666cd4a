#!/usr/bin/env python3
"""Figures for `ot analyze`: reads the summary.json that `ot analyze` writes (tables,
sweeps, efficiency, the list of completed run files, and the paper's vocabulary: settings
and tasks in order with their labels, each metric's direction) and the training curves
from the run files themselves (h5py), and writes PNG and SVG files:

  curve_<name>.{png,svg}              one per curve (/curves/<name>): loss vs step, one
                                      line per run (a curve without a loss column: each
                                      of its columns vs step)
  sweep_<key>.{png,svg}               one per swept key (the seed excepted): OT Plug-in and
                                      OT Emulator against the swept value, with the
                                      zero-shot references, one panel per task
  privacy_utility_<key>.{png,svg}     the same sweep as OT Emulator score (what the data
                                      owner could reach alone) against OT Plug-in score
  efficiency.{png,svg}                tokens/s and peak memory per group (and stage), when recorded

Usage: plot_results.py --summary analysis/summary.json --out analysis/figures
Exit status: 0 done, 2 bad arguments or summary, 3 a needed module is missing.
"""

import argparse
import json
import math
import os
import re
import sys

MISSING_MODULE = 3

try:
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import h5py
except ImportError as e:  # the caller turns this status into advice (or --no-figures)
    print(f"plot_results.py: {e}: the figures need matplotlib, numpy and h5py "
          f"(this is {sys.executable})", file=sys.stderr)
    sys.exit(MISSING_MODULE)

# How each of the paper's settings is drawn: (line style, marker). The settings themselves,
# their order and labels come from the summary's "vocabulary" (eval/vocabulary.h).
SETTING_STYLE = {
    "plugin": ("-", "o"),
    "ft_emulator": ("-", "s"),
    "zs_emulator": ("--", "v"),
    "zs_full": (":", None),
    "ft_full": ("-.", None),
}


def setting_label(summary, setting):
    for s in summary["vocabulary"]["settings"]:
        if s["name"] == setting:
            return s["label"]
    return setting


def paper_tasks(summary):
    return [t["name"] for t in summary["vocabulary"]["tasks"]]


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def save(fig, out_dir, stem, written):
    """Writes stem.png and stem.svg atomically (temporary name, then rename)."""
    for ext in ("png", "svg"):
        final = os.path.join(out_dir, f"{stem}.{ext}")
        tmp = os.path.join(out_dir, f".{stem}.{ext}.tmp.{os.getpid()}")
        fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        os.replace(tmp, final)
        written.append(final)
    plt.close(fig)


def grid(n):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def read_curve(path, name):
    with h5py.File(path, "r") as f:
        group = f["curves"][name]
        columns = [c.decode() if isinstance(c, bytes) else str(c) for c in group.attrs["columns"]]
        return {c: np.asarray(group[c][:], dtype=float) for c in columns}


def run_label(run):
    seed = run.get("seed")
    return run["group"] if seed is None else f"{run['group']} (seed {seed})"


def plot_curves(summary, out_dir, written):
    names = []
    for run in summary["runs"]:
        for c in run["curves"]:
            if c not in names:
                names.append(c)
    for name in names:
        data = [(run, read_curve(run["path"], name)) for run in summary["runs"] if name in run["curves"]]
        if any("loss" in curve for _, curve in data):
            columns = ["loss"]
        else:
            columns = [c for c in data[0][1] if c != "step"][:6]
        if not columns:
            continue
        fig, axes = grid(len(columns))
        for ax, column in zip(axes, columns):
            for run, curve in data:
                if column not in curve:
                    continue
                y = curve[column]
                x = curve["step"] if "step" in curve else np.arange(len(y))
                ax.plot(x, y, label=run_label(run), linewidth=1.2)
            ax.set_xlabel("step")
            ax.set_ylabel(column)
            ax.grid(alpha=0.3)
        axes[0].set_title(f"{name}: {', '.join(columns)}")
        if len(data) <= 16:
            axes[0].legend(fontsize=7)
        save(fig, out_dir, f"curve_{safe_name(name)}", written)


def sweep_series(summary, sweep):
    """The points of one sweep, split by the values of the other swept keys."""
    series = {}
    for p in sweep["points"]:
        key = json.dumps(p["others"], sort_keys=True)
        series.setdefault(key, []).append(p)
    numeric = all(isinstance(p["value"], (int, float)) and not isinstance(p["value"], bool)
                  for p in sweep["points"])
    order = []
    for p in sweep["points"]:
        if p["value"] not in order:
            order.append(p["value"])
    for pts in series.values():
        pts.sort(key=(lambda p: p["value"]) if numeric else (lambda p: order.index(p["value"])))
    return series, numeric, order


def cell(group, setting, task):
    for c in group["cells"]:
        if c["setting"] == setting and c["task"] == task:
            return c
    return None


def sweep_columns(summary, sweep, settings):
    """The task columns of a sweep that have all of `settings` at two or more swept values
    (all columns if none has), the paper's tasks first, in its order."""
    columns, values = [], {}
    for p in sweep["points"]:
        group = summary["groups"][p["group"]]
        for col in group["columns"]:
            if col["task"] not in [c["task"] for c in columns]:
                columns.append(col)
            if all(cell(group, s, col["task"]) for s in settings):
                values.setdefault(col["task"], set()).add(json.dumps(p["value"]))
    swept = [c for c in columns if len(values.get(c["task"], ())) >= 2]
    columns = swept or columns
    tasks = paper_tasks(summary)
    rank = {t: i for i, t in enumerate(tasks)}
    return sorted(columns, key=lambda c: rank.get(c["task"], len(tasks)))


def others_label(others):
    return ", ".join(f"{k}={v}" for k, v in sorted(others.items()))


def plot_sweep(summary, sweep, out_dir, written):
    key = sweep["key"]
    series, numeric, order = sweep_series(summary, sweep)
    columns = sweep_columns(summary, sweep, ["plugin"])
    fig, axes = grid(len(columns))
    for ax, col in zip(axes, columns):
        for others_key, pts in series.items():
            suffix = others_label(json.loads(others_key))
            for setting in (s["name"] for s in summary["vocabulary"]["settings"]):
                if setting not in SETTING_STYLE:
                    continue
                style, marker = SETTING_STYLE[setting]
                label = setting_label(summary, setting)
                xs, ys, es = [], [], []
                for p in pts:
                    c = cell(summary["groups"][p["group"]], setting, col["task"])
                    if c is None:
                        continue
                    xs.append(p["value"] if numeric else order.index(p["value"]))
                    ys.append(c["mean"])
                    es.append(c["sem"] or 0.0)
                if not xs:
                    continue
                name = f"{label} ({suffix})" if suffix else label
                if setting == "zs_full" and len(set(ys)) == 1:
                    ax.axhline(ys[0], linestyle=style, color="grey", label=name)
                else:
                    ax.errorbar(xs, ys, yerr=es, linestyle=style, marker=marker, capsize=3, label=name)
        if numeric:
            ax.set_xticks(sorted(order))
        else:
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels([str(v) for v in order])
        unit = f" ({col['unit']})" if col["unit"] else ""
        ax.set_title(col["header"])
        ax.set_xlabel(key)
        ax.set_ylabel(col["metric"] + unit)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    plugin, emulator = setting_label(summary, "plugin"), setting_label(summary, "ft_emulator")
    fig.suptitle(f"{plugin} vs {emulator} against {key}")
    save(fig, out_dir, f"sweep_{safe_name(key)}", written)


def plot_privacy_utility(summary, sweep, out_dir, written):
    key = sweep["key"]
    series, numeric, order = sweep_series(summary, sweep)
    columns = sweep_columns(summary, sweep, ["plugin", "ft_emulator"])
    fig, axes = grid(len(columns))
    drawn = False
    for ax, col in zip(axes, columns):
        lo, hi = math.inf, -math.inf
        for others_key, pts in series.items():
            xs, ys, labels = [], [], []
            for p in pts:
                g = summary["groups"][p["group"]]
                e, u = cell(g, "ft_emulator", col["task"]), cell(g, "plugin", col["task"])
                if e is None or u is None:
                    continue
                xs.append(e["mean"])
                ys.append(u["mean"])
                labels.append(str(p["value"]))
            if not xs:
                continue
            drawn = True
            suffix = others_label(json.loads(others_key))
            ax.plot(xs, ys, marker="o", label=suffix or None)
            for x, y, t in zip(xs, ys, labels):
                ax.annotate(f"{key}={t}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
        if lo < hi:
            ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle=":")
        unit = f" ({col['unit']})" if col["unit"] else ""
        lower = summary["vocabulary"]["metrics"][col["metric"]]["lower_is_better"]
        better = "lower is better" if lower else "higher is better"
        ax.set_title(f"{col['header']} ({better})")
        ax.set_xlabel(f"{setting_label(summary, 'ft_emulator')} {col['metric']}{unit}")
        ax.set_ylabel(f"{setting_label(summary, 'plugin')} {col['metric']}{unit}")
        ax.grid(alpha=0.3)
    if not drawn:
        plt.close(fig)
        return
    if len(series) > 1:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"Privacy (emulator alone) vs utility (plug-in) over {key}")
    save(fig, out_dir, f"privacy_utility_{safe_name(key)}", written)


STAGES = [("pretrain_", "pretraining"), ("distill_", "distillation"), ("", "fine-tuning"),
          ("full_finetune_", "full fine-tuning")]


def plot_efficiency(summary, out_dir, written):
    # One bar per group, or per group and stage where a recipe recorded its stages
    # (pretrain_tokens_per_s, distill_tokens_per_s, ...; the fine-tuning itself unprefixed).
    rows = summary["efficiency"]
    staged = any(k.startswith(p) for r in rows for k in r["values"] for p, _ in STAGES if p)
    panels = [("tokens_per_s", "tokens/s"), ("peak_memory_mib", "peak memory (MiB)")]
    fig_panels = []
    for k, title in panels:
        bars = []
        for r in rows:
            for prefix, stage in STAGES if staged else [("", "")]:
                v = r["values"].get(prefix + k)
                if v is not None:
                    label = f"{r['group']}\n{stage}" if staged and len(rows) > 1 else (stage or r["group"])
                    bars.append((label, v["mean"], v["sem"] or 0.0))
        if bars:
            fig_panels.append((title, bars))
    if not fig_panels:
        return
    fig, axes = grid(len(fig_panels))
    for ax, (title, bars) in zip(axes, fig_panels):
        ax.bar(range(len(bars)), [b[1] for b in bars], yerr=[b[2] for b in bars], capsize=3, color="tab:blue")
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars], rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    if staged and len(rows) == 1:
        fig.suptitle(rows[0]["group"])
    save(fig, out_dir, "efficiency", written)


def main():
    parser = argparse.ArgumentParser(description="Figures for `ot analyze`.")
    parser.add_argument("--summary", required=True, help="summary.json written by `ot analyze`")
    parser.add_argument("--out", required=True, help="directory for the figures")
    args = parser.parse_args()
    try:
        with open(args.summary, encoding="utf-8") as f:
            summary = json.load(f)
        for key in ("groups", "runs", "sweeps", "efficiency", "vocabulary"):
            if key not in summary:
                raise ValueError(f"no '{key}' entry")
    except (OSError, ValueError) as e:
        print(f"plot_results.py: {args.summary}: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    written = []
    plot_curves(summary, args.out, written)
    for sweep in summary["sweeps"]:
        plot_sweep(summary, sweep, args.out, written)
        plot_privacy_utility(summary, sweep, args.out, written)
    plot_efficiency(summary, args.out, written)
    print(f"plot_results.py: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
