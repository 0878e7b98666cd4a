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
  privacy_utility_<key>.{png,svg}     the same sweep as a privacy-utility frontier: OT
                                      Plug-in score (utility) against the privacy gap (Plug-in
                                      minus OT Emulator), one labelled point per swept value
  results_<group>.{png,svg}           one per group: the settings as grouped bars per task
                                      (and the 8-task average), seeds' sem as error bars, the
                                      published numbers as markers, the pattern checks noted
  privacy_utility.{png,svg}           every group on the frontier: Plug-in against the privacy
                                      gap and against the Emulator ZS utility lost, with the
                                      published points (e.g. GradOT's rows) beside ours
  cka_<group>.{png,svg}               one per group whose runs recorded a CKA selection: the
                                      linear CKA of its middle blocks, the kept blocks marked
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
    from matplotlib.ticker import MaxNLocator
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


# Bar colours per setting, so that a setting looks the same in every figure.
SETTING_COLOR = {
    "zs_full": "#9e9e9e",
    "zs_emulator": "#9ecae1",
    "ft_full": "#424242",
    "ft_emulator": "#fd8d3c",
    "plugin": "#31a354",
}
# A curve with at most this many points is drawn with markers (one or two points are
# otherwise invisible).
MARKER_POINTS = 30


def plain_axes(ax):
    """Plain tick labels: no offset ("+1.234e3") or scientific notation on linear axes, which
    hide the values of a curve that barely moves."""
    from matplotlib.ticker import ScalarFormatter
    for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            ax.ticklabel_format(axis=name, useOffset=False, style="plain")


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
                marker = "o" if len(y) <= MARKER_POINTS else None
                ax.plot(x, y, label=run_label(run), linewidth=1.2, marker=marker, markersize=4)
            ax.set_xlabel("step")
            ax.set_ylabel(column)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps: no "0.02" ticks around one point
            steps = [v for _, curve in data for v in curve.get("step", [])]
            if steps and min(steps) == max(steps):  # one step: a span of whole steps around it
                ax.set_xlim(min(steps) - 1, max(steps) + 1)
            plain_axes(ax)
        axes[0].set_title(f"{name}: {', '.join(columns)}")
        if len(data) <= 16:
            axes[0].legend(fontsize=7)
        save(fig, out_dir, f"curve_{safe_name(name)}", written)


def moves_together(sweep):
    """Whether the other swept keys change with this one at every point (keys zipped in one
    sweep): split by them, every series would hold one point."""
    others = [json.dumps(p["others"], sort_keys=True) for p in sweep["points"]]
    return len(others) > 1 and len(set(others)) == len(others)


def sweep_series(summary, sweep):
    """The points of one sweep, split by the values of the other swept keys (one series where
    they move together with it)."""
    series = {}
    together = moves_together(sweep)
    for p in sweep["points"]:
        key = "{}" if together else json.dumps(p["others"], sort_keys=True)
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
        plain_axes(ax)
    axes[0].legend(fontsize=7)
    plugin, emulator = setting_label(summary, "plugin"), setting_label(summary, "ft_emulator")
    fig.suptitle(f"{plugin} vs {emulator} against {key}")
    save(fig, out_dir, f"sweep_{safe_name(key)}", written)


def difference(group, name, task):
    """A group's privacy-utility difference on a task ("average_8": its 8-task average)."""
    for d in group.get("differences", []):
        if d["name"] == name:
            return d["average"] if task == "average_8" else d["cells"].get(task)
    return None


def headline(group, setting, task):
    """A group's cell on a task, or its 8-task average for "average_8"."""
    if task == "average_8":
        return group.get("average", {}).get(setting)
    return cell(group, setting, task)


def headline_tasks(summary, groups):
    """The 8-task average where every group has it, else the task columns with a privacy gap in
    the most groups (a panel of one group's point among many compares nothing), the paper's
    tasks first: (task, header, unit, metric, lower_is_better)."""
    if groups and all(g.get("has_average") for g in groups):
        return [("average_8", "Avg (8)", "%", summary["metric"], False)]
    out, count = [], {}
    for g in groups:
        for col in g["columns"]:
            if not difference(g, "privacy_gap", col["task"]):
                continue
            count[col["task"]] = count.get(col["task"], 0) + 1
            if col["task"] not in [t[0] for t in out]:
                out.append((col["task"], col["header"], col["unit"], col["metric"], col["lower_is_better"]))
    most = max(count.values(), default=0)
    out = [t for t in out if count[t[0]] == most]
    rank = {t: i for i, t in enumerate(paper_tasks(summary))}
    return sorted(out, key=lambda t: rank.get(t[0], len(rank)))


def frontier_panel(summary, ax, points, task, unit, metric, lower_is_better, xkind, connect):
    """One privacy-utility panel: per point (label, group), the group's Plug-in (y) against its
    difference `xkind` (x), with both sems; published points as hollow markers. Up is more
    useful (a lower-is-better axis runs downwards). Returns (anything drawn, any published)."""
    xs, ys, labels, drawn, published = [], [], [], False, False
    for label, g in points:
        d, u = difference(g, xkind, task), headline(g, "plugin", task)
        if d is None or u is None:
            continue
        drawn = True
        ax.errorbar(d["mean"], u["mean"], xerr=d["sem"] or 0.0, yerr=u["sem"] or 0.0, marker="o",
                    color="tab:green", capsize=3, linestyle="none")
        labels.append((label, d["mean"], u["mean"]))
        xs.append(d["mean"])
        ys.append(u["mean"])
        paper = g.get("paper") or {}
        if task == "average_8":
            pd, pu = paper.get("average_differences", {}).get(xkind), paper.get("average", {}).get("plugin")
        else:
            pd = pu = None
        if pd is not None and pu is not None:
            published = True
            ax.plot([pd], [pu], marker="D", markerfacecolor="none", markeredgecolor="black", linestyle="none")
            ax.annotate(f"{label} (published)", (pd, pu), fontsize=7, xytext=(4, -10), textcoords="offset points")
            ax.plot([d["mean"], pd], [u["mean"], pu], color="grey", linewidth=0.6, linestyle=":")
    if connect and len(xs) > 1:
        ax.plot(xs, ys, color="tab:green", linewidth=0.8, alpha=0.6)
    # Labels of points close together (a label's width apart, a few % of the height) stacked downwards.
    span_x = (max(xs) - min(xs)) if xs else 0.0
    span_y = (max(ys) - min(ys)) if ys else 0.0
    placed = []
    for label, x, y in labels:
        near = sum(1 for px, py in placed
                   if abs(x - px) <= 0.25 * (span_x or 1.0) and abs(y - py) <= 0.06 * (span_y or 1.0))
        ax.annotate(label, (x, y), fontsize=7, xytext=(5, 4 - 9 * near), textcoords="offset points")
        placed.append((x, y))
    u = f" ({unit})" if unit else ""
    kinds = {d["name"]: d["label"] for g in summary["groups"] for d in g.get("differences", [])}
    ax.set_xlabel(kinds.get(xkind, xkind) + u + "  \u2192 more private", fontsize=8)
    direction = ", lower is better" if lower_is_better else ""
    ax.set_ylabel(f"{setting_label(summary, 'plugin')} {metric}{u}{direction}  \u2192 more useful", fontsize=8)
    if lower_is_better:
        ax.invert_yaxis()
    ax.grid(alpha=0.3)
    plain_axes(ax)
    return drawn, published


def plot_frontier(summary, points, connect, title, stem, out_dir, written):
    """Plug-in against the privacy gap and against the Emulator ZS utility lost, per headline
    task (the 8-task average where every group has it)."""
    groups = [g for _, g in points]
    tasks = headline_tasks(summary, groups)
    kinds = ["privacy_gap", "zs_emulator_gap"]
    if not tasks:
        return
    fig, axes = grid(len(tasks) * len(kinds))
    drawn = published = False
    for i, (task, header, unit, metric, lower_is_better) in enumerate(tasks):
        for j, kind in enumerate(kinds):
            ax = axes[i * len(kinds) + j]
            d, p = frontier_panel(summary, ax, points, task, unit, metric, lower_is_better, kind, connect)
            drawn, published = drawn or d, published or p
            ax.set_title(header, fontsize=9)
    if not drawn:
        plt.close(fig)
        return
    fig.suptitle(title + (" (hollow: published)" if published else ""))
    save(fig, out_dir, stem, written)


def plot_privacy_utility(summary, sweep, out_dir, written):
    key = sweep["key"]
    series, numeric, order = sweep_series(summary, sweep)
    for others_key, pts in series.items():
        suffix = others_label(json.loads(others_key))
        points = [(str(p["value"]) if key == "experiment.label" else f"{key}={p['value']}",
                   summary["groups"][p["group"]]) for p in pts]
        stem = f"privacy_utility_{safe_name(key)}"
        if len(series) > 1 and suffix:
            stem += "_" + safe_name(suffix)
        title = f"Privacy-utility frontier over {key}" + (f" ({suffix})" if suffix else "")
        plot_frontier(summary, points, numeric, title, stem, out_dir, written)  # a line only along a number


def plot_group_frontier(summary, out_dir, written):
    points = [(g["name"], g) for g in summary["groups"] if g.get("differences")]
    if points:
        plot_frontier(summary, points, False, "Privacy-utility: every group", "privacy_utility",
                      out_dir, written)


def check_lines(group):
    """The pattern checks as text: how many columns hold, the average margin."""
    lines = []
    for c in group.get("checks", []):
        margins = c["margins"].values()
        holds = sum(1 for m in margins if m["margin"] > 0)
        mark = "\u2713" if holds == len(margins) else "\u2717"
        line = f"{mark} {c['name']}: holds in {holds}/{len(margins)} columns"
        if len(margins) == 1:
            line += f" (margin {next(iter(margins))['margin']:+.2f})"
        if c.get("average_margin") is not None:
            line += f", Avg (8) margin {c['average_margin']:+.1f}"
        lines.append(line)
    return lines


def plot_group_results(summary, group, out_dir, written):
    """The five settings side by side: one panel of bars for the accuracy columns (and the
    8-task average), one panel per other column with its own scale; a perplexity has no
    natural zero, so those panels draw points over an axis fitted to the values (bars from
    zero would hide differences of a few percent)."""
    settings = [s["name"] for s in summary["vocabulary"]["settings"]]
    shown = [s for s in settings if any(c["setting"] == s for c in group["cells"])]
    shown += [c["setting"] for c in group["cells"] if c["setting"] not in shown]
    shown = list(dict.fromkeys(shown))
    percent = [c for c in group["columns"] if c["unit"] == "%"]
    others = [c for c in group["columns"] if c["unit"] != "%"]
    panels = []
    if percent:
        entries = [(c["task"], c["header"]) for c in percent]
        if group.get("has_average"):
            entries.append(("average_8", "Avg (8)"))
        panels.append((entries, f"{summary['metric']} (%)", True))
    for c in others:
        better = "lower is better" if c["lower_is_better"] else "higher is better"
        panels.append(([(c["task"], c["header"])], f"{c['metric']} ({better})", False))
    if not panels:
        return
    paper = group.get("paper") or {}
    pcells = {(c["setting"], c["task"]): c["value"] for c in paper.get("cells", [])}
    for s, v in paper.get("average", {}).items():
        pcells[(s, "average_8")] = v
    lines = check_lines(group)
    if lines:
        lines.insert(0, "Pattern checks (PAPER.md 2.5), on the means:")
    published = paper.get("average_differences", {})
    if published:
        labels_of = {d["name"]: d["label"] for d in group.get("differences", [])}
        order = list(labels_of) + [k for k in published if k not in labels_of]
        lines.append(f"Published ({paper.get('ref')}), Avg (8): " +
                     "; ".join(f"{labels_of.get(k, k)} {published[k]:+.1f}" for k in order if k in published))
    widths = [max(2.4, 0.2 * len(shown) * len(e) + 0.6) for e, _, _ in panels]
    # Wide enough for the legend above and the checks below.
    scale = max(1.0, 6.5 / sum(widths))
    widths = [w * scale for w in widths]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 0.5, 4.6 + 0.16 * len(lines)), squeeze=False,
                             gridspec_kw={"width_ratios": widths}, constrained_layout=True)
    width = 0.8 / max(1, len(shown))
    marked = False
    for ax, (entries, ylabel, as_bars) in zip(axes[0], panels):
        for k, setting in enumerate(shown):
            xs, ys, es = [], [], []
            for i, (task, _) in enumerate(entries):
                c = headline(group, setting, task)
                if c is None:
                    continue
                xs.append(i + (k - (len(shown) - 1) / 2) * width)
                ys.append(c["mean"])
                es.append(c["sem"] or 0.0)
            if xs and as_bars:
                ax.bar(xs, ys, width=width, yerr=es, capsize=2, label=setting_label(summary, setting),
                       color=SETTING_COLOR.get(setting), edgecolor="black", linewidth=0.4,
                       error_kw={"elinewidth": 0.8})
            elif xs:
                ax.errorbar(xs, ys, yerr=es, capsize=2, linestyle="none", marker="s", markersize=7,
                            label=setting_label(summary, setting), color=SETTING_COLOR.get(setting),
                            markeredgecolor="black", markeredgewidth=0.4, ecolor="black", elinewidth=0.8)
            px, py = [], []
            for i, (task, _) in enumerate(entries):
                v = pcells.get((setting, task))
                if v is not None:
                    px.append(i + (k - (len(shown) - 1) / 2) * width)
                    py.append(v)
            if px:
                marked = True
                ax.plot(px, py, linestyle="none", marker="D", markersize=5, markerfacecolor="white",
                        markeredgecolor="black", label=None)
        if not as_bars:
            ax.set_xlim(-0.5, len(entries) - 0.5)
        ax.set_xticks(range(len(entries)))
        ax.set_xticklabels([h for _, h in entries], rotation=30 if len(entries) > 4 else 0,
                           ha="right" if len(entries) > 4 else "center", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        plain_axes(ax)
    # Every panel's settings (a perplexity panel may have one the accuracy panel lacks).
    handles, labels = [], []
    for ax in axes[0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if marked:
        from matplotlib.lines import Line2D
        handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="white",
                              markeredgecolor="black"))
        labels.append(f"published ({paper.get('ref')})")
    # Above the first panel (a figure legend is not laid out by this matplotlib's
    # constrained layout; an axes legend is).
    axes[0][0].legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=min(len(labels), 3),
                      fontsize=7, frameon=False)
    seeds = f"{group['runs']} run" + ("s" if group["runs"] != 1 else "")
    fig.suptitle(f"{group['name']} ({seeds}; error bars: sem over runs)", fontsize=10)
    if lines:
        fig.supxlabel("\n".join(lines), fontsize=8, x=0.0, ha="left")
    save(fig, out_dir, f"results_{safe_name(group['name'])}", written)


def plot_cka(summary, group, out_dir, written):
    """The CKA matrix of a group's CKA selection (mean over its runs with the same blocks)."""
    runs = [r for r in summary["runs"] if r["group"] == group["name"] and r.get("cka")]
    if not runs:
        return
    first = runs[0]["cka"]
    same = [r["cka"] for r in runs if r["cka"]["blocks"] == first["blocks"]]
    m = np.mean([np.asarray(c["matrix"], dtype=float) for c in same], axis=0)
    blocks, kept = first["blocks"], set(first["kept"])
    n = len(blocks)
    size = min(9.0, 2.5 + 0.35 * n)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), constrained_layout=True)
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis", origin="upper")
    fig.colorbar(im, ax=ax, shrink=0.8, label="linear CKA")
    step = 1 if n <= 24 else 2
    ax.set_xticks(range(0, n, step))
    ax.set_yticks(range(0, n, step))
    ax.set_xticklabels([str(blocks[i]) for i in range(0, n, step)], fontsize=7)
    ax.set_yticklabels([str(blocks[i]) for i in range(0, n, step)], fontsize=7)
    for label in ax.get_xticklabels() + ax.get_yticklabels():
        if int(label.get_text()) in kept:
            label.set_color("red")
            label.set_fontweight("bold")
    for i, b in enumerate(blocks):
        if b in kept:
            ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] < 0.6 else "black")
    ax.set_xlabel("block")
    ax.set_ylabel("block")
    runs_note = f"mean of {len(same)} runs" if len(same) > 1 else "1 run"
    ax.set_title(f"{group['name']}: CKA of the middle blocks ({runs_note}; red: kept)", fontsize=9)
    save(fig, out_dir, f"cka_{safe_name(group['name'])}", written)


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
    for group in summary["groups"]:
        if group["cells"]:
            plot_group_results(summary, group, args.out, written)
        plot_cka(summary, group, args.out, written)
    # Keys zipped together share one axis: drawn once, over the label where it is one of them.
    drawn = set()
    for sweep in sorted(summary["sweeps"], key=lambda w: w["key"] != "experiment.label"):
        if moves_together(sweep):
            groups = tuple(sorted(p["group"] for p in sweep["points"]))
            if groups in drawn:
                continue
            drawn.add(groups)
        plot_sweep(summary, sweep, args.out, written)
        plot_privacy_utility(summary, sweep, args.out, written)
    plot_group_frontier(summary, args.out, written)
    plot_efficiency(summary, args.out, written)
    print(f"plot_results.py: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
