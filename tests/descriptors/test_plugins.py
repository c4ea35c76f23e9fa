"""Descriptors from outside lookalike: registered in this process, or installed as plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from lookalike.descriptors import create
from lookalike.descriptors.registry import from_spec

ROOT = Path(__file__).resolve().parents[2]


def test_a_spec_never_names_a_module():
    spec = create("edge-hist").spec()
    assert set(spec) == {"name", "config"}
    planted = {**spec, "name": "edge-hist", "class": "os:system"}
    assert type(from_spec(planted)).__name__ == "EdgeHistogram"  # by name; the path is ignored


def test_an_installed_plugin_is_found_by_its_entry_point(tmp_path, image_dir):
    site = tmp_path / "site"
    (site / "mean_colour_plugin").mkdir(parents=True)
    (site / "mean_colour_plugin" / "__init__.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass

        import numpy as np

        from lookalike.descriptors.base import Descriptor, DescriptorConfig


        @dataclass(frozen=True)
        class MeanColourConfig(DescriptorConfig):
            max_side: int = 64  # decode small


        class MeanColour(Descriptor):
            """Mean RGB colour, L2-normalised."""

            name = "mean-colour"
            Config = MeanColourConfig
            raw_dim = 3
            advice = "a plugin's example"

            def compute(self, image):
                mean = image.reshape(-1, 3).mean(axis=0)
                return (mean / np.linalg.norm(mean)).astype(np.float32)
    '''))
    info = site / "mean_colour_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mean-colour-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lookalike.descriptors]\nmean-colour = mean_colour_plugin:MeanColour\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(site)])}

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True,
                              text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "mean-colour (3-D): a plugin's example" in cli("descriptors")
    assert "12 indexed" in cli("index", image_dir, "-c", tmp_path / "c", "-d", "mean-colour", "--workers", "2")
    hits = json.loads(cli("search", image_dir / "img06.jpg", "-c", tmp_path / "c", "-k", "1", "--json"))
    assert hits["results"][0]["path"].endswith("img06.jpg")
