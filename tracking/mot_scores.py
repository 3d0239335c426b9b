"""Tracking, detection and alert figures for point targets.

A prediction matches a labelled target within its gate: max(3 px, half the label box's diagonal), so a
point target (box of a few px) keeps the 3 px rule and a 30 px aircraft box accepts any point on the aircraft.
HOTA (DetA, AssA), CLEAR (MOTA, IDSW) and Identity (IDF1) come from TrackEval's metric classes, fed in memory
with the point similarity sim = max(0, 1 - d / (2 gate)), so that their 0.5 threshold is the gate.
Detection P/R/F1 matches per frame within the gate (Hungarian). Alert figures use the tracker's `new` events.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence as Seq

import numpy as np
from trackeval.metrics import CLEAR, HOTA, Identity

from detector.metrics import GATE_PX, match_points

from .events import TrackEvent
from .motchallenge import MotRows

MATCH_RADIUS = GATE_PX  # px: the smallest gate, the detector's point-match gate
SCR_EDGES = (3.0, 5.0, 7.0, 10.0)


def match_gate(wh: np.ndarray) -> np.ndarray:
    """(G,) gate of each labelled target, px: max(3 px, half the diagonal of its (G, 2) box size)."""
    wh = np.asarray(wh, float).reshape(-1, 2)
    return np.maximum(MATCH_RADIUS, 0.5 * np.hypot(wh[:, 0], wh[:, 1]))


def point_similarity(gt_xy: np.ndarray, tr_xy: np.ndarray, gate: np.ndarray | float = MATCH_RADIUS) -> np.ndarray:
    """(G, T) similarity max(0, 1 - d / (2 gate)) between point sets; `gate` per target or one for all."""
    d = np.linalg.norm(np.asarray(gt_xy, float)[:, None, :] - np.asarray(tr_xy, float)[None, :, :], axis=2)
    g = np.broadcast_to(np.asarray(gate, float).reshape(-1), (len(d),))[:, None] if len(d) else 1.0
    return np.maximum(0.0, 1.0 - d / (2 * g))


def as_rows(tracks: MotRows | Iterable) -> MotRows:
    """Tracker output as `MotRows`: pass MotRows through, or build from `(frame, Tracks)` pairs."""
    return tracks if isinstance(tracks, MotRows) else MotRows.from_tracks(tracks)


def trackeval_data(gt: MotRows, tr: MotRows, num_frames: int) -> dict:
    """The per-sequence dict that TrackEval's metrics take (ids relabelled to 0..n-1, frames 1..num_frames)."""
    gt_map = {v: k for k, v in enumerate(np.unique(gt.id).tolist())}
    tr_map = {v: k for k, v in enumerate(np.unique(tr.id).tolist())}
    data: dict = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for f in range(1, num_frames + 1):
        gi, ti = gt.at(f), tr.at(f)
        data["gt_ids"].append(np.array([gt_map[v] for v in gt.id[gi].tolist()], int))
        data["tracker_ids"].append(np.array([tr_map[v] for v in tr.id[ti].tolist()], int))
        data["similarity_scores"].append(point_similarity(gt.xy[gi], tr.xy[ti], match_gate(gt.wh[gi])))
    data.update(num_timesteps=num_frames, num_gt_ids=len(gt_map), num_tracker_ids=len(tr_map),
                num_gt_dets=int(sum(len(g) for g in data["gt_ids"])),
                num_tracker_dets=int(sum(len(t) for t in data["tracker_ids"])))
    return data


def tracking_metrics(gt: MotRows, tracks: MotRows | Iterable, num_frames: int) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA, MOTA, MOTP, IDSW, IDF1, IDP, IDR, MT, ML, Frag via TrackEval."""
    tr = as_rows(tracks)
    gt = gt.select((gt.frame >= 1) & (gt.frame <= num_frames))
    tr = tr.select((tr.frame >= 1) & (tr.frame <= num_frames))
    data = trackeval_data(gt, tr, num_frames)
    h = HOTA().eval_sequence(data)
    c = CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}).eval_sequence(data)
    i = Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False}).eval_sequence(data)
    return {"HOTA": float(np.mean(h["HOTA"])), "DetA": float(np.mean(h["DetA"])),
            "AssA": float(np.mean(h["AssA"])), "LocA": float(np.mean(h["LocA"])),
            "MOTA": float(c["MOTA"]), "MOTP": float(c["MOTP"]), "IDSW": int(c["IDSW"]),
            "MT": int(c["MT"]), "ML": int(c["ML"]), "Frag": int(c["Frag"]),
            "IDF1": float(i["IDF1"]), "IDP": float(i["IDP"]), "IDR": float(i["IDR"]),
            "gt_ids": data["num_gt_ids"], "track_ids": data["num_tracker_ids"]}


def detection_prf(gt: MotRows, points: MotRows | Seq, num_frames: int) -> dict[str, float]:
    """Per-frame detection precision / recall / F1 (match within each target's gate). `points`: MotRows, or
    one entry per frame (frame 1 first) with `.xy` (e.g. `Detections`) or an (N, 2) array."""
    tp = fp = fn = 0
    for f in range(1, num_frames + 1):
        gi = gt.at(f)
        gxy = gt.xy[gi]
        if isinstance(points, MotRows):
            txy = points.xy[points.at(f)]
        else:
            p = points[f - 1]
            txy = np.asarray(getattr(p, "xy", p), float).reshape(-1, 2)
        m = len(match_points(txy, gxy, match_gate(gt.wh[gi])))
        tp, fp, fn = tp + m, fp + len(txy) - m, fn + len(gxy) - m
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"det_P": p, "det_R": r, "det_F1": 2 * p * r / (p + r) if p + r else 0.0,
            "det_TP": tp, "det_FP": fp, "det_FN": fn}


def alert_metrics(gt: MotRows, events: Iterable[TrackEvent], num_frames: int, fps: float) -> dict[str, float]:
    """Alert-level figures from `new` events (`TrackEvent`s, or the pipeline's `Alert`s: anything with
    `event`, `frame_index`, `x`, `y`): share of true targets alerted, frames from a target's first
    appearance to its first `new`, false `new` per hour of video (a `new` within no target's gate in its
    frame, each listed in `false_new_at` as [frame, x, y]), `new` per alerted target."""
    first = {int(i): int(gt.frame[gt.id == i].min()) for i in np.unique(gt.id)}
    alerted: dict[int, int] = {}
    true_new = false_new = 0
    false_at: list[list[float]] = []
    for e in events:
        if e.event != "new":
            continue
        gi = gt.at(e.frame_index)
        d = np.hypot(gt.xy[gi, 0] - e.x, gt.xy[gi, 1] - e.y) if len(gi) else np.zeros(0)
        inside = d <= match_gate(gt.wh[gi]) if len(d) else np.zeros(0, bool)
        if inside.any():
            true_new += 1
            tid = int(gt.id[gi[int(np.argmin(np.where(inside, d, np.inf)))]])
            alerted.setdefault(tid, e.frame_index)
        else:
            false_new += 1
            false_at.append([int(e.frame_index), round(float(e.x), 1), round(float(e.y), 1)])
    lat = [alerted[t] - first[t] for t in alerted]
    hours = num_frames / fps / 3600.0
    return {"targets": len(first), "targets_alerted": len(alerted),
            "alert_share": len(alerted) / len(first) if first else float("nan"),
            "latency_frames_mean": float(np.mean(lat)) if lat else float("nan"),
            "latency_frames_median": float(np.median(lat)) if lat else float("nan"),
            "new_true": true_new, "new_false": false_new,
            "false_new_per_hour": false_new / hours if hours else float("nan"),
            "new_per_target": true_new / len(alerted) if alerted else float("nan"),
            "latencies": lat, "hours": hours, "false_new_at": false_at}


def summarize(results: Seq[dict]) -> dict[str, float]:
    """Figures over many sequences from their `evaluate(..., events=...)` results: targets alerted (pooled),
    median / mean frames to alert over all alerted targets, false `new` per hour of all the video, mean HOTA
    and IDF1 over the sequences."""
    targets = sum(r["targets"] for r in results)
    alerted = sum(r["targets_alerted"] for r in results)
    lat = [v for r in results for v in r.get("latencies", [])]
    hours = sum(r["hours"] for r in results)
    false = sum(r["new_false"] for r in results)
    return {"sequences": len(results), "targets": targets, "targets_alerted": alerted,
            "alert_share": alerted / targets if targets else float("nan"),
            "latency_frames_median": float(np.median(lat)) if lat else float("nan"),
            "latency_frames_mean": float(np.mean(lat)) if lat else float("nan"),
            "new_false": false, "hours": hours, "false_new_per_hour": false / hours if hours else float("nan"),
            "HOTA": float(np.mean([r["HOTA"] for r in results])) if results else float("nan"),
            "IDF1": float(np.mean([r["IDF1"] for r in results])) if results else float("nan")}


def scr_bin_label(scr: float, edges: Seq[float] = SCR_EDGES) -> str:
    if not math.isfinite(scr):
        return "unknown"
    if scr < edges[0]:
        return f"<{edges[0]:g}"
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= scr < hi:
            return f"{lo:g}-{hi:g}"
    return f">={edges[-1]:g}"


def by_scr(gt: MotRows, tr: MotRows, events: Optional[list[TrackEvent]], num_frames: int, fps: float,
           edges: Seq[float] = SCR_EDGES) -> dict[str, dict]:
    """Figures per SCR bin of the targets' median SCR. Tracker rows matched (3 px) to targets of other bins,
    and unmatched rows, are left out: false tracks have no SCR, so per-bin figures carry no false positives."""
    scr = gt.target_scr()
    labels = {i: scr_bin_label(s, edges) for i, s in scr.items()}
    if all(v == "unknown" for v in labels.values()):
        return {}
    owner = np.full(len(tr), -1)
    for f in range(1, num_frames + 1):
        gi, ti = gt.at(f), tr.at(f)
        for b, a in match_points(tr.xy[ti], gt.xy[gi], match_gate(gt.wh[gi])):
            owner[ti[b]] = gt.id[gi[a]]
    out = {}
    order = sorted(set(labels.values()), key=lambda s: (s == "unknown", float(s.lstrip("<>=").split("-")[0])
                                                           if s != "unknown" else 0.0))
    for lab in order:
        ids = [i for i, v in labels.items() if v == lab]
        g = gt.select(np.isin(gt.id, ids))
        t = tr.select(np.isin(owner, ids))
        m = tracking_metrics(g, t, num_frames)
        res = {"targets": len(ids), "HOTA": m["HOTA"], "AssA": m["AssA"], "IDF1": m["IDF1"],
               "det_R": detection_prf(g, t, num_frames)["det_R"]}
        if events is not None:
            a = alert_metrics(g, events, num_frames, fps)
            res.update(alert_share=a["alert_share"], latency_frames_median=a["latency_frames_median"])
        out[lab] = res
    return out


def evaluate(gt: MotRows, tracks: MotRows | Iterable, num_frames: int, fps: float = 25.0,
             events: Optional[Iterable[TrackEvent]] = None, scr_edges: Seq[float] = SCR_EDGES) -> dict:
    """Everything for one sequence: tracking metrics, detection P/R/F1 of the tracker output, alert figures
    (when `events` is given) and `by_scr` (when the gt records SCR)."""
    tr = as_rows(tracks)
    ev = list(events) if events is not None else None
    out: dict = {**tracking_metrics(gt, tr, num_frames), **detection_prf(gt, tr, num_frames)}
    if ev is not None:
        out.update(alert_metrics(gt, ev, num_frames, fps))
    out["by_scr"] = by_scr(gt, tr, ev, num_frames, fps, scr_edges)
    return out

