"""End to end on real photographs: the shared benchmarks and the demo set, with quality floors.

The floors sit a little under the measured values in docs/benchmarks.md, so a regression in any
stage (decoding, a descriptor, search, AP) fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from lookalike.descriptors import create
from lookalike.io.demo_photos import build_demo_set
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import evaluate_descriptor

VLAD_FLOOR, BOW_FLOOR = 0.85, 0.85  # measured 0.884 and 0.887 (color-hist: 0.812)


@pytest.mark.parametrize("name, floor", [("color-hist", 0.75), ("edge-hist", 0.36), ("gist", 0.40)])
def test_landmarks(shared_data, name, floor):
    result = evaluate_descriptor(load_protocol(shared_data / "landmarks" / "full.json"), create(name),
                                 progress=False)
    assert result["map"] >= floor
    assert result["skipped"] == [] and result["queries"] == 50


def test_copydays_attacks_hit_colour_histograms_as_expected(shared_data):
    protocol = load_protocol(shared_data / "copydays" / "full.json")
    keep = [i for i, a in enumerate(protocol.qattack) if a in ("jpeg75", "crop80", "colour")]
    subset = dataclasses.replace(
        protocol,
        qimlist=[protocol.qimlist[i] for i in keep], gnd=[protocol.gnd[i] for i in keep],
        qattack=[protocol.qattack[i] for i in keep], qfamily=[protocol.qfamily[i] for i in keep],
    )
    per_attack = evaluate_descriptor(subset, create("color-hist"), progress=False)["per_attack"]
    assert per_attack["jpeg75"]["map"] >= 0.95
    # a hue/saturation change moves the colour histogram: the course's argument against colour
    assert per_attack["colour"]["map"] < per_attack["jpeg75"]["map"] - 0.3


def test_demo_set(tmp_path):
    pytest.importorskip("skimage")
    protocol = load_protocol(build_demo_set(tmp_path / "demo"))
    assert len(protocol.imlist) == 20 and len(protocol.qimlist) == 100
    result = evaluate_descriptor(protocol, create("gist"), progress=False)
    assert result["map"] >= 0.85 and result["per_attack"]["jpeg"]["map"] >= 0.9


def test_landmarks_vlad_and_bow_beat_global_descriptors(shared_data, tmp_path):
    """Aggregated SIFT on landmarks' scenes plus 100 distractors, vocabulary learned on them."""
    pytest.importorskip("cv2")
    protocol = load_protocol(shared_data / "landmarks" / "full.json")
    scenes = [i for i, path in enumerate(protocol.imlist) if not path.startswith("distractors/")]
    keep = scenes + [i for i, path in enumerate(protocol.imlist) if path.startswith("distractors/")][:100]
    new_index = {old: new for new, old in enumerate(keep)}
    subset = dataclasses.replace(
        protocol, imlist=[protocol.imlist[i] for i in keep],
        gnd=[{key: [new_index[i] for i in values if i in new_index] for key, values in g.items()}
             for g in protocol.gnd])
    vlad = evaluate_descriptor(subset, create("vlad", k=16), progress=False, vocabulary_dir=tmp_path)
    bow = evaluate_descriptor(subset, create("bow", k=1000), progress=False, vocabulary_dir=tmp_path)
    color = evaluate_descriptor(subset, create("color-hist"), progress=False)
    assert vlad["map"] >= VLAD_FLOOR and bow["map"] >= BOW_FLOOR
    assert vlad["map"] > color["map"] and bow["map"] > color["map"]
